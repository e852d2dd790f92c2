"""Shared fixtures: DynamoDB (moto in-process, or dynalite for modules marked
`dynamodb_backends`) with the table built from template.yaml; console users; log capture,
and a check after every test that no token ever reached a log line."""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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

from devserver.dynalite import DYNALITE, start_dynalite
from devserver.gateway import HttpResponse, Identity, console_request
from devserver.template import table_definition
from token_service import observability, wiring
from token_service.domain.identity import Caller
from token_service.domain.records import TokenRecord
from token_service.domain.token_format import generate_token, token_regex
from token_service.observability import logger
from token_service.storage.attribute_values import serialize
from token_service.storage.items import token_item

TABLE_NAME = os.environ["TABLE_NAME"]
TOKEN_IN_TEXT = re.compile(token_regex("lgk").replace(r"\b", ""))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dynamodb_backends: also run against dynalite (DynamoDB's own validation)")


def dynamodb_backends() -> list[str]:
    if DYNALITE.exists() and shutil.which("node"):
        return ["moto", "dynalite"]
    if os.environ.get("CI"):
        raise RuntimeError("CI must run the tests against dynalite too: run `npm ci` first (see .ci/run)")
    return ["moto"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("dynamodb_backends") and "dynamodb" in metafunc.fixturenames:
        metafunc.parametrize("dynamodb", dynamodb_backends(), indirect=True)


@pytest.fixture(scope="session")
def dynalite_endpoint() -> Iterator[str]:
    process, endpoint = start_dynalite(DYNALITE)
    yield endpoint
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def dynamodb(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    backend = getattr(request, "param", "moto")
    wiring.reset()
    if backend == "moto":
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(TableName=TABLE_NAME, **table_definition())
            yield client
    else:
        endpoint = request.getfixturevalue("dynalite_endpoint")
        monkeypatch.setenv("DYNAMODB_ENDPOINT_URL", endpoint)
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        if TABLE_NAME in client.list_tables()["TableNames"]:
            client.delete_table(TableName=TABLE_NAME)
            client.get_waiter("table_not_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})
        client.create_table(TableName=TABLE_NAME, **table_definition())
        client.get_waiter("table_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})
        yield client
    wiring.reset()


class FakeClock:
    """A settable clock: `wiring.get_service().clock = FakeClock(...)` (epoch seconds or datetime)."""

    def __init__(self, moment: float | datetime) -> None:
        self.set(moment)

    def __call__(self) -> float:
        return self.now

    def set(self, moment: float | datetime) -> None:
        self.now = moment.timestamp() if isinstance(moment, datetime) else float(moment)


T0 = 1_900_000_000.0  # the default fake "now" (2030-03-17)


@pytest.fixture
def clock(dynamodb: object) -> FakeClock:
    """The service's clock, fixed at T0 until a test moves it."""
    fake = FakeClock(T0)
    wiring.get_service().clock = fake
    return fake


def seed_tokens(
    dynamodb: Any,
    owner: Caller,
    count: int,
    *,
    start: float = T0,
    expires_at: int | None = None,
    revoked_at: int | None = None,
) -> list[str]:
    """Writes token items exactly as the service stores them, without its per-create cost;
    oldest first, 10 ms apart from `start`. Expiry: `expires_at`, else 90 days after creation."""
    settings = wiring.get_service().settings
    retention = settings.retention_seconds
    ids = []
    for index in range(count):
        created = start + index * 0.01
        record = TokenRecord.issue(
            generate_token("lgk"),
            org_id=owner.org_id,
            owner_id=owner.user_id,
            name=f"seeded {index}",
            scopes=("reports:read",),
            now=created,
            expires_at=expires_at if expires_at is not None else int(created) + 90 * 86_400,
            retention_seconds=retention,
            schedule=settings.schedule,
        )
        if revoked_at is not None:
            record = record.revoked(revoked_at, owner.user_id, retention)
        dynamodb.put_item(TableName=TABLE_NAME, Item=serialize(token_item(record)))
        ids.append(record.token_id)
    return ids


def field_problems(response: HttpResponse) -> dict[str, str]:
    return {problem["field"]: problem["reason"] for problem in response.json()["error"].get("fields", [])}


def assert_invalid(response: HttpResponse, field: str) -> str:
    """A 400 invalid_request naming `field`; returns its reason."""
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] == "invalid_request"
    problems = field_problems(response)
    assert field in problems, problems
    assert problems[field]
    return problems[field]


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


@pytest.fixture(autouse=True)
def service_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The service's log lines exactly as Lambda would ship them (Powertools JSON).

    Autouse: after every test of the suite, no log line may contain a token."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger._logger.addHandler(handler)
    write_to_stdout = observability.write_decision_line

    def write_decision_line(line: str) -> None:  # the authorizer's lines: to stdout, and here
        stream.write(line + "\n")
        write_to_stdout(line)

    monkeypatch.setattr(observability, "write_decision_line", write_decision_line)
    yield stream
    logger._logger.removeHandler(handler)
    text = stream.getvalue()
    leaked = TOKEN_IN_TEXT.findall(text)
    assert not leaked, f"a token reached the service's logs: {leaked[0][:8]}..."
    assert "Bearer " not in text, "an Authorization header value reached the service's logs"


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
