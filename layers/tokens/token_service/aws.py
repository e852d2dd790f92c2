"""boto3 clients with standard retries and short timeouts, created once per process."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def dynamodb_client(connect_timeout: float = 1.0, read_timeout: float = 3.0, attempts: int = 3) -> DynamoDBClient:
    """DYNAMODB_ENDPOINT_URL points the service at DynamoDB Local, dynalite or moto's server."""
    options: dict[str, Any] = {}
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL")
    if endpoint:
        options["endpoint_url"] = endpoint
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )
    return boto3.client("dynamodb", config=config, **options)
