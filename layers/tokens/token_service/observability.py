"""The one place Logger, Tracer and Metrics are made (service name and namespace come
from POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
