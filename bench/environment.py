"""The environment the service reads at import time, pointed at a local DynamoDB endpoint.

Set it before importing any service module: configuration is read once per process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE_NAME = "api-tokens-bench"
EVENT_BUS_NAME = "api-tokens-bench"
REGION = "us-east-1"
# The app client the sample events' ID tokens (events/) and devserver.gateway.Identity's claims
# were issued to (their `aud`): the one the console API's functions accept.
CONSOLE_CLIENT_ID = "4example0client0id0abcdef"

# As template.yaml sets them for every function with its default parameters (LogLevel INFO,
# XRaySdkTracing false, hence POWERTOOLS_TRACE_DISABLED=true).
SERVICE_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "TABLE_NAME": TABLE_NAME,
    "EVENT_BUS_NAME": EVENT_BUS_NAME,
    "TOKEN_PREFIX": "lgk",
    "RETENTION_DAYS": "30",
    "NOTIFY_BEFORE_DAYS": "7,1",
    "POWERTOOLS_SERVICE_NAME": "api-tokens",
    "POWERTOOLS_METRICS_NAMESPACE": "ApiTokens",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_LOGGER_LOG_EVENT": "false",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",
    "CONSOLE_CLIENT_IDS": CONSOLE_CLIENT_ID,
}
# Anything that would send the service elsewhere than the bench's endpoints.
_CLEARED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "SCOPE_CATALOG_PATH",
    "ROUTE_SCOPES_PATH",
    "PROTECTED_API_ID",
    "PROTECTED_API_STAGE",
    "LIFECYCLE_LOOKBACK_DAYS",
)


def configure(dynamodb_endpoint: str, events_endpoint: str | None = None) -> None:
    """Sets this process's environment; call before importing token_service or a handler."""
    for key in _CLEARED:
        os.environ.pop(key, None)
    os.environ.update(SERVICE_ENVIRONMENT)
    os.environ["DYNAMODB_ENDPOINT_URL"] = dynamodb_endpoint
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_endpoint
    if events_endpoint:  # botocore's name for EventBridge (AWS_ENDPOINT_URL_EVENTS is ignored)
        os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] = events_endpoint


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker process measures against (see bench.worker)."""

    endpoint: str  # empty: the task starts moto in its own process
    backend: str
    quick: bool = False
    latency_ms: float = 0.0  # emulated network latency added before each DynamoDB request
    events_endpoint: str = ""  # moto's server, which also serves EventBridge, SQS and API Gateway
