"""The one observability module.

- `logger`, `metrics` (Powertools Logger and Metrics) and `get_tracer()` (Powertools Tracer)
  for the management functions and the cleanup. Built on first use, so the authorizer
  never imports Powertools.
- `decision_record()` for the authorizer: one JSON line per decision that is at once its
  structured log line and its CloudWatch metric (embedded metric format), written with the
  standard library only. Service name and namespace come from POWERTOOLS_SERVICE_NAME and
  POWERTOOLS_METRICS_NAMESPACE either way.
"""

from __future__ import annotations

import json
import os
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


# Read once: the authorizer writes one decision line per request.
_SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "api-tokens")
_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "ApiTokens")
_SERVICE_JSON = json.dumps(_SERVICE)
_ENCODER = json.JSONEncoder(default=str)  # one instance: json.dumps(default=...) builds one per call


def write_decision_line(line: str) -> None:
    """Lambda ships stdout to CloudWatch Logs. Written directly rather than through
    `logging`, whose record machinery costs more than a rejected token's whole check;
    flushed, so the line is out before the environment is frozen."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def decision_record(metric: str, dimensions: dict[str, str], fields: dict[str, Any], level: str = "INFO") -> None:
    """One line: a structured log entry whose `_aws` block also makes it a metric (count 1).

    Only the fields are encoded per call; the rest of the line is text prepared once per
    metric, since the authorizer writes one of these for every request, rejected or not."""
    now = time.time()
    timestamp = f"{_utc_second(int(now))}.{int(now * 1000) % 1000:03d}Z"
    head = f'{{"level":"{level}","timestamp":"{timestamp}","service":{_SERVICE_JSON},'
    body = _ENCODER.encode({**fields, **dimensions, metric: 1})[1:-1]
    write_decision_line(f"{head}{body}{_EMF_HEAD}{int(now * 1000)}{_emf_directive(metric, tuple(dimensions))}")


@lru_cache(maxsize=2)
def _utc_second(epoch_second: int) -> str:
    """Formatted once per second, not once per line."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


_EMF_HEAD = ',"_aws":{"Timestamp":'


@cache
def _emf_directive(metric: str, dimension_names: tuple[str, ...]) -> str:
    """The rest of the embedded-metric-format block that makes the line a count of `metric`."""
    directive = {
        "Namespace": _NAMESPACE,
        "Dimensions": [["service", *dimension_names]],
        "Metrics": [{"Name": metric, "Unit": "Count"}],
    }
    return f',"CloudWatchMetrics":[{json.dumps(directive)}]}}}}'
