"""AWS clients with standard retries and short timeouts, created once per process.

They come from botocore directly: boto3 adds nothing to a client, but its import also
loads s3transfer (S3's transfer manager), about 40 ms of every cold start.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import botocore.session
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


USER_AGENT_NAME = "api-token-service"


@cache
def _session() -> botocore.session.Session:
    # One session per process shares credentials and loaded service models between clients.
    return botocore.session.get_session()


def aws_client(
    service_name: str,
    connect_timeout: float = 1.0,
    read_timeout: float = 3.0,
    attempts: int = 3,
    endpoint_url: str | None = None,
) -> Any:
    session = _session()
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        # Per-request CPU, which bulk revoke and the authorizer pay on every call (measured
        # in docs/performance.md, 6): a fixed User-Agent, since botocore otherwise rebuilds
        # and sanitises its ~30-part header twice per request; and no client-side parameter
        # validation, which DynamoDB repeats on its side and mypy checks against boto3-stubs.
        user_agent=f"{session.user_agent()} {USER_AGENT_NAME}",
        parameter_validation=False,
    )
    return session.create_client(service_name, config=config, endpoint_url=endpoint_url or None)


def dynamodb_client(
    endpoint_url: str | None = None, connect_timeout: float = 1.0, read_timeout: float = 3.0, attempts: int = 3
) -> DynamoDBClient:
    """`endpoint_url` (DYNAMODB_ENDPOINT_URL) points the service at DynamoDB Local, dynalite or moto's server."""
    client: DynamoDBClient = aws_client("dynamodb", connect_timeout, read_timeout, attempts, endpoint_url)
    return client
