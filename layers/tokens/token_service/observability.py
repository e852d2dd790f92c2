"""The one observability module.

- `logger`, `metrics` (Powertools Logger and Metrics) and `get_tracer()` (Powertools Tracer)
  for the management functions and the cleanup. Built on first use, so the authorizer
  never imports Powertools.
- `DecisionLog` for the authorizer: one JSON line per decision that is at once its
  structured log line and its CloudWatch metric (embedded metric format), written with the
  standard library only, under the service name and namespace Powertools uses.

A leaf: it imports nothing else of the package, so every part may log.
"""

from __future__ import annotations

import json
import sys
import time
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics, Tracer

    logger: Logger
    metrics: Metrics


def __getattr__(name: str) -> Any:
    if name == "logger":
        return _powertools()[0]
    if name == "metrics":
        return _powertools()[1]
    raise AttributeError(name)


@cache
def _powertools() -> tuple[Logger, Metrics]:
    from aws_lambda_powertools import Logger, Metrics

    return Logger(), Metrics()


@cache
def get_tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer()


# One instance (json.dumps(default=...) builds one per call); the fields are flat values, so
# no circular-reference bookkeeping either.
_ENCODER = json.JSONEncoder(default=str, check_circular=False)


def write_decision_line(line: str) -> None:
    """Lambda ships stdout to CloudWatch Logs. Written directly rather than through
    `logging`, whose record machinery costs more than a rejected token's whole check;
    flushed, so the line is out before the environment is frozen."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class DecisionLog:
    """Writes the authorizer's decision lines."""

    def __init__(self, service_name: str, metrics_namespace: str) -> None:
        self._service_json = json.dumps(service_name)
        self.namespace = metrics_namespace

    def record(self, metric: str, dimensions: dict[str, str], fields: dict[str, Any], level: str = "INFO") -> None:
        """One line: a structured log entry whose `_aws` block also makes it a metric (count 1).
        Dimension and metric names are not field names.

        Only the fields and the time are encoded per call; the rest of the line is text prepared
        once per metric and dimension values, since the authorizer writes one of these for every
        request, rejected or not (docs/performance.md, figure 2)."""
        millis = int(time.time() * 1000)
        second, fraction = divmod(millis, 1000)
        head = f'{{"level":"{level}","timestamp":"{_utc_second(second)}.{fraction:03d}Z","service":{self._service_json}'
        body = _ENCODER.encode(fields)[1:-1]  # "name": value, ... without the braces
        counted, directive = _metric_text(self.namespace, metric, tuple(dimensions.items()))
        separator = ", " if body else ""  # as JSONEncoder separates items
        write_decision_line(f"{head},{body}{separator}{counted}{millis}{directive}")


@lru_cache(maxsize=2)
def _utc_second(epoch_second: int) -> str:
    """Formatted once per second, not once per line."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


@lru_cache(maxsize=64)  # the authorizer's: two metrics, a dozen reasons
def _metric_text(namespace: str, metric: str, dimensions: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The line's text after its fields, before and after the timestamp: the dimensions and a
    count of `metric`, then the rest of the embedded-metric-format block that makes the line
    that count."""
    counted = _ENCODER.encode({**dict(dimensions), metric: 1})[1:-1]
    directive = {
        "Namespace": namespace,
        "Dimensions": [["service", *(name for name, _ in dimensions)]],
        "Metrics": [{"Name": metric, "Unit": "Count"}],
    }
    return f'{counted},"_aws":{{"Timestamp":', f',"CloudWatchMetrics":[{json.dumps(directive)}]}}}}'
