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
from functools import cache
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


def write_decision_line(line: str) -> None:
    """Lambda ships stdout to CloudWatch Logs. Written directly rather than through
    `logging`, whose record machinery costs more than a rejected token's whole check;
    flushed, so the line is out before the environment is frozen."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def decision_record(metric: str, dimensions: dict[str, str], fields: dict[str, Any], level: str = "INFO") -> None:
    """One line: a structured log entry whose `_aws` block also makes it a metric (count 1)."""
    now = time.time()
    document = {
        "level": level,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
        "service": _SERVICE,
        **fields,
        **dimensions,
        metric: 1,
        "_aws": {
            "Timestamp": int(now * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": _NAMESPACE,
                    "Dimensions": [["service", *dimensions]],
                    "Metrics": [{"Name": metric, "Unit": "Count"}],
                }
            ],
        },
    }
    write_decision_line(json.dumps(document, default=str))
