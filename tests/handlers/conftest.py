"""Fixtures of the handler tier: the real handlers in-process, on moto (and dynalite where a
module is marked `dynamodb_backends`)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from moto.dynamodb.responses import DynamoHandler
from support import (
    CAP,
    FLUSH_QUEUE_URL,
    GLOBEX_MEMBER,
    MEMBER,
    OTHER_MEMBER,
    PROTECTED_APIS,
    AccessWorld,
    Console,
    FakeApiGateway,
    FakeClock,
    FaultWorld,
    seed_tokens,
    set_cap,
    table,
)

from devserver.gateway import (
    LocalGateway,
    load_handler_module,
)
from devserver.template import ROOT
from token_service import wiring
from token_service.storage.aws import dynamodb_client
from token_service.storage.repository import TokenRepository


@pytest.fixture
def authorizer_app(dynamodb: object) -> Iterator[Any]:
    module = load_handler_module(ROOT / "functions" / "authorizer", "app.lambda_handler")
    module.authorizer.clock = time.time
    # The module outlives the test, and its client was made for the backend of the test that
    # first loaded it: point it at this test's backend (moto or dynalite), then put it back.
    original = module.authorizer.repository
    endpoint = os.environ.get("DYNAMODB_ENDPOINT_URL")
    client = dynamodb_client(endpoint, connect_timeout=0.5, read_timeout=1.0, attempts=3)
    module.authorizer.repository = TokenRepository(original.table_name, client)
    yield module
    module.authorizer.repository = original
    module.authorizer.clock = time.time  # leave no fake clock behind


@pytest.fixture
def fake_apigateway(monkeypatch: pytest.MonkeyPatch) -> FakeApiGateway:
    """Every revoke's flushes, recorded: a REST stage and an HTTP API stage are protected."""
    fake = FakeApiGateway()
    monkeypatch.setattr("token_service.storage.cache_flush.aws_client", fake)
    monkeypatch.setenv("PROTECTED_APIS", PROTECTED_APIS)
    monkeypatch.setenv("FLUSH_QUEUE_URL", FLUSH_QUEUE_URL)
    wiring.reset()
    return fake


@pytest.fixture
def atomic_dynamodb_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes each emulated DynamoDB request atomic, as each real one is.

    moto's DynamoDB backend is not thread-safe: its condition checks and writes interleave
    with other threads', and its table copies fail with "dictionary changed size during
    iteration" while another thread writes.
    Real DynamoDB evaluates a request's conditions and applies its writes atomically, so
    one lock around each emulated request restores that guarantee and nothing more: the
    service's read-check-write sequence still races freely across requests.
    """
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def one_request_at_a_time(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", one_request_at_a_time)


@pytest.fixture
def access_world(request: pytest.FixtureRequest, dynamodb: Any) -> AccessWorld:
    console = request.getfixturevalue(request.node.callspec.params["caller_name"])
    return AccessWorld(console, dynamodb)


@pytest.fixture
def fault_world(dynamodb: Any, admin: Console, member: Console) -> FaultWorld:
    member.create_ok("already there")
    return FaultWorld(dynamodb, admin, member)


@pytest.fixture
def small_cap(admin: Console, clock: FakeClock) -> int:
    set_cap(admin, CAP)
    return CAP


@pytest.fixture
def consoles(admin: Console, member: Console, viewer: Console) -> dict[str, Console]:
    return {"admin": admin, "member": member, "viewer": viewer}


@pytest.fixture
def untouched(dynamodb: Any, admin: Console, member: Console) -> Any:
    """The table as it is before the hostile request; call it afterwards to check nothing changed."""
    member.create_ok("already there")
    before = table(dynamodb)

    def check() -> None:
        assert table(dynamodb) == before

    return check


@pytest.fixture
def gateway(admin: Console) -> LocalGateway:
    """The local API Gateway emulation (routing included), calling the handlers in-process as the admin."""
    return LocalGateway(lambda _: admin.identity)


@pytest.fixture
def cursors(admin: Console, member: Console, other_member: Console, dynamodb: Any) -> dict[str, str]:
    """Genuine cursors from several listings, and the ids they were made from."""
    seed_tokens(dynamodb, MEMBER, 3)
    seed_tokens(dynamodb, OTHER_MEMBER, 3)
    globex = seed_tokens(dynamodb, GLOBEX_MEMBER, 3)
    found = {
        "member": member.request("GET", "/tokens", query={"limit": "1"}).json()["next"],
        "other_member": other_member.request("GET", "/tokens", query={"limit": "1"}).json()["next"],
        "admin_all_users": admin.request("GET", "/tokens", query={"limit": "1", "all_users": "true"}).json()["next"],
        "globex_token": globex[0],
    }
    assert all(found.values())
    return found


@pytest.fixture
def repository(dynamodb: Any) -> TokenRepository:
    return wiring.get_service().repository


@pytest.fixture
def colleague_token(other_member: Console) -> dict[str, Any]:
    return other_member.create_ok(name="colleague's")
