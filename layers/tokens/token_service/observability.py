"""The one place Logger, Metrics and Tracer are made (service name and namespace come
from POWERTOOLS_SERVICE_NAME and POWERTOOLS_METRICS_NAMESPACE).

The tracer is built on first use, so the authorizer, which does not trace, does not pay
for importing the X-Ray SDK at cold start.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
metrics = Metrics()


@cache
def get_tracer() -> Tracer:
    from aws_lambda_powertools import Tracer

    return Tracer()
