"""Shared fixtures: an in-memory DynamoDB (moto) whose table is built from template.yaml."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

# Set before any service module is imported: configuration is read once per process.
os.environ.update(
    {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "TABLE_NAME": "api-tokens-test",
        "TOKEN_PREFIX": "lgk",
        "RETENTION_DAYS": "30",
        "POWERTOOLS_SERVICE_NAME": "api-tokens",
        "POWERTOOLS_METRICS_NAMESPACE": "ApiTokens",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "EVENT_BUS_NAME": "api-tokens-test",
        "NOTIFY_BEFORE_DAYS": "7,1",
    }
)
os.environ.pop("DYNAMODB_ENDPOINT_URL", None)
os.environ.pop("SCOPE_CATALOG_PATH", None)

import boto3
import pytest
from moto import mock_aws

from devserver.gateway import HttpResponse, Identity, console_request
from devserver.template import table_definition
from token_service import api
from token_service.observability import logger

TABLE_NAME = os.environ["TABLE_NAME"]


@pytest.fixture
def dynamodb() -> Iterator[object]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE_NAME, **table_definition())
        api.get_service.cache_clear()
        yield client
        api.get_service.cache_clear()


@dataclass(frozen=True)
class Console:
    """Calls the management API as one user, through the real handlers."""

    identity: Identity

    def request(self, method: str, path: str, **kwargs: object) -> HttpResponse:
        return console_request(self.identity, method, path, **kwargs)  # type: ignore[arg-type]

    def create(self, name: str = "ci token", scopes: list[str] | None = None, **fields: object) -> HttpResponse:
        body = {"name": name, "scopes": scopes or ["reports:read"], **fields}
        return self.request("POST", "/tokens", body=body)

    def create_ok(self, name: str = "ci token", scopes: list[str] | None = None, **fields: object) -> dict:
        response = self.create(name, scopes, **fields)
        assert response.status == 201, response.body
        return response.json()


ORG = "org-acme"
OTHER_ORG = "org-globex"


@pytest.fixture
def admin(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-admin", org_id=ORG, role="admin"))


@pytest.fixture
def member(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-member", org_id=ORG, role="member"))


@pytest.fixture
def other_member(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-member-2", org_id=ORG, role="member"))


@pytest.fixture
def viewer(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-viewer", org_id=ORG, role="viewer"))


@pytest.fixture
def outsider_admin(dynamodb: object) -> Console:
    return Console(Identity(user_id="user-globex-admin", org_id=OTHER_ORG, role="admin"))


@pytest.fixture
def service_log() -> Iterator[io.StringIO]:
    """The service's log lines exactly as Lambda would ship them (Powertools JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    yield stream
    logger._logger.removeHandler(handler)


@pytest.fixture
def captured_logs(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, service_log: io.StringIO
) -> object:
    """Everything the service logged or printed (metrics are printed as EMF JSON)."""
    caplog.set_level(logging.DEBUG)

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text + service_log.getvalue()

    return read
