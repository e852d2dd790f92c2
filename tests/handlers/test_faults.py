"""DynamoDB failing at every call of every handler, with every error code that matters.

tests/handlers/test_secrets_and_storage.py fails the *first* call of five handlers with five codes,
and tests/handlers/test_authorizer.py the authorizer's read with eight. Here each management handler
(create, list, get, revoke, bulk revoke, settings get and put) and the self-service handler
(GET and DELETE /v1/token) fails at each DynamoDB call it makes in turn (the calls before it
reach the table), with each of seven codes, and:

- answers a defined status: 503 + Retry-After for throttling and internal errors, a JSON 500
  `internal_error` for a missing table or denied access, 409 `conflict` for a condition
  failure where none can happen; the body never carries a stack trace, the error code, the
  table name or its ARN;
- leaves no half-written state: the table afterwards holds what it held before, except what
  the design allows (a create that failed after taking its slot leaves the slot, never a
  token; see test_active_cap.py for how that slot is freed);
- works again, once DynamoDB does, with the same request.

The fault is injected by botocore's Stubber on the service's own client, activated after the
service is built; `StubberFromCall` lets the calls before the failing one through.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from botocore import xform_name
from botocore.stub import Stubber
from support import Console, FaultWorld, authorize, mint, self_service_event, token_event

from devserver.gateway import HttpResponse, LambdaContext, load_handler_module, policy_allows
from devserver.template import ROOT
from token_service import wiring
from token_service.storage.attribute_values import deserialize

TABLE_NAME = os.environ["TABLE_NAME"]
TABLE_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE_NAME}"
RETRYABLE = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
]
FATAL = ["ResourceNotFoundException", "AccessDeniedException"]
CONDITION = "ConditionalCheckFailedException"
CODES = [*RETRYABLE, CONDITION, *FATAL]
HTTP_STATUS = {"InternalServerError": 500}
LEAKS = (TABLE_NAME, "arn:aws", "Traceback", 'File "', "botocore", "ClientError", "dynamodb", "DynamoDB", *CODES)


class StubberFromCall(Stubber):
    """botocore's Stubber, except that only the call at position `skip` (0-based) is answered
    from its queue: the calls before it, and those after it (a retry, a read that explains a
    failed condition), reach the table.

    The Stubber answers in its `before-parameter-build` and `before-call` handlers; answering
    nothing lets a call through to the endpoint (moto)."""

    def __init__(self, client: Any, skip: int) -> None:
        super().__init__(client)
        self.skip = skip
        self.calls: list[str] = []

    def _stubbed(self) -> bool:
        return len(self.calls) == self.skip + 1

    def _assert_expected_params(self, model: Any, params: Any, context: Any, **kwargs: Any) -> None:
        self.calls.append(model.name)
        if self._stubbed():
            super()._assert_expected_params(model, params, context, **kwargs)

    def _get_response_handler(self, model: Any, params: Any, context: Any, **kwargs: Any) -> Any:
        if not self._stubbed():
            return None
        return super()._get_response_handler(model, params, context, **kwargs)


@contextmanager
def fail_call(position: int, operation: str, code: str) -> Iterator[StubberFromCall]:
    """The call at `position` (0-based) of the service's client fails with `code`."""
    client = wiring.get_service().repository.client
    stubber = StubberFromCall(client, skip=position)
    message = f"{TABLE_ARN}: simulated {code}"
    stubber.add_client_error(xform_name(operation), code, message, HTTP_STATUS.get(code, 400))
    with stubber:
        yield stubber


AUDIT_MODULE = "token_service/storage/audit.py"


def from_the_audit_chain() -> bool:
    """Whether the DynamoDB call being made is the audit chain's (after the change is stored)."""
    frame = sys._getframe()
    while frame is not None:
        if frame.f_code.co_filename.replace("\\", "/").endswith(AUDIT_MODULE):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


@contextmanager
def record_calls(audit_calls: list[int] | None = None) -> Iterator[list[str]]:
    """The DynamoDB operations the service's client makes, in order (all reach the table); the
    positions of the audit chain's calls go to `audit_calls`."""
    client = wiring.get_service().repository.client
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        if audit_calls is not None and from_the_audit_chain():
            audit_calls.append(len(calls))
        calls.append(model.name)

    client.meta.events.register("before-call.dynamodb", record, unique_id="fault-recorder")
    try:
        yield calls
    finally:
        client.meta.events.unregister("before-call.dynamodb", unique_id="fault-recorder")


def snapshot(dynamodb: Any) -> dict[tuple[str, str], dict[str, Any]]:
    items = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True):
        for raw in page["Items"]:
            item = deserialize(raw)
            items[(item["pk"], item["sk"])] = item
    return items


def changes(before: dict[Any, Any], after: dict[Any, Any]) -> set[tuple[str, str]]:
    return {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}


def assert_defined_failure(reply: HttpResponse, code: str) -> None:
    if code in RETRYABLE:
        assert reply.status == 503, reply.body
        assert reply.json()["error"]["code"] == "service_unavailable"
        assert reply.headers.get("Retry-After") == "1", reply.headers
    elif code in FATAL:
        assert reply.status == 500, reply.body
        assert reply.json()["error"]["code"] == "internal_error"
        assert "Retry-After" not in reply.headers
    else:
        assert reply.status == 409, reply.body
        assert reply.json()["error"]["code"] == "conflict"
    assert set(reply.json()["error"]) == {"code", "message"}
    assert reply.headers.get("Content-Type") == "application/json"
    for leak in LEAKS:
        assert leak not in reply.body, (leak, reply.body)


# -- the management handlers ------------------------------------------------------------------


@dataclass
class Operation:
    """One management call: `prepare` sets up its target, `call` makes it, and `writes` names
    the items a call that failed after `calls_made` may nevertheless have written."""

    prepare: Callable[[FaultWorld], Any]
    call: Callable[[FaultWorld, Any], HttpResponse]
    writes: Callable[[Any, list[str]], set[tuple[str, str]]] = lambda target, calls_made: set()


def _create_prepare(fault_world: FaultWorld) -> Console:
    return fault_world.new_member()


def _create(fault_world: FaultWorld, console: Console) -> HttpResponse:
    return console.create("faulty")


def _create_writes(console: Console, calls_made: list[str]) -> set[tuple[str, str]]:
    """The first PutItem registers the owner (token_service.domain.membership; harmless without
    a token); once the slot is taken (the second), a failed token write leaves it; never a token."""
    identity = console.identity
    puts = calls_made.count("PutItem")
    registered = {("MEMBERS", f"{identity.org_id}#{identity.user_id}")} if puts >= 1 else set()
    slot = {(f"ORG#{identity.org_id}#USER#{identity.user_id}", "ACTIVE_TOKENS")} if puts >= 2 else set()
    return registered | slot


def _token_target(fault_world: FaultWorld) -> tuple[Console, str]:
    console = fault_world.new_member()
    return console, fault_world.token_of(console)


def _token_key(token_id: str) -> tuple[str, str]:
    return (f"TOKEN#{token_id}", "TOKEN")


OPERATIONS: dict[str, Operation] = {
    "create": Operation(_create_prepare, _create, _create_writes),
    "list": Operation(lambda w: w.member, lambda w, c: c.request("GET", "/tokens", query={"status": "active"})),
    "get": Operation(_token_target, lambda w, t: t[0].request("GET", f"/tokens/{t[1]}")),
    "revoke": Operation(_token_target, lambda w, t: t[0].request("DELETE", f"/tokens/{t[1]}")),
    "bulk_revoke": Operation(
        _token_target,
        lambda w, t: t[0].request("POST", "/tokens/revoke", body={"owner_id": t[0].identity.user_id}),
    ),
    "settings_get": Operation(lambda w: w.member, lambda w, c: c.request("GET", "/settings")),
    "settings_put": Operation(
        lambda w: w.admin,
        lambda w, c: c.request(
            "PUT",
            "/settings",
            body={"max_lifetime_days": 30, "default_lifetime_days": 7, "max_active_tokens_per_user": 5},
        ),
    ),
}


def healthy_calls(fault_world: FaultWorld, operation: Operation, audit_calls: list[int]) -> list[str]:
    target = operation.prepare(fault_world)
    with record_calls(audit_calls) as calls:
        reply = operation.call(fault_world, target)
    assert reply.status in (200, 201), reply.body
    return list(calls)


def assert_the_audit_chain_catches_up(fault_world: FaultWorld, context: str) -> None:
    """After a failed append, the next GET /audit appends what waits: an intact chain, and no
    entry left in any outbox."""
    check = fault_world.admin.request("GET", "/audit/verify")
    assert check.status == 200 and check.json()["intact"], (context, check.body)
    waiting = fault_world.dynamodb.scan(TableName=TABLE_NAME, IndexName="ByAuditOutbox")["Items"]
    assert waiting == [], (context, waiting)


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_failing_call_gets_a_defined_answer_and_leaves_no_half_written_state(
    fault_world: FaultWorld, name: str, code: str
) -> None:
    operation = OPERATIONS[name]
    audit_calls: list[int] = []
    calls = healthy_calls(fault_world, operation, audit_calls)  # a healthy run's calls, in order
    assert calls, name
    for position, call in enumerate(calls):
        target = operation.prepare(fault_world)
        before = snapshot(fault_world.dynamodb)
        with fail_call(position, call, code) as stubber:
            reply = operation.call(fault_world, target)
            stubber.assert_no_pending_responses()  # the fault was injected, at this call
        after = snapshot(fault_world.dynamodb)
        context = f"{name}: {call} #{position} fails with {code}"

        if position in audit_calls:
            # The change is stored with its audit entry; appending it to the chain failed, which
            # never fails the change: the entry waits in the item for the next drain.
            assert reply.status in (200, 201), (context, reply.body)
            assert_the_audit_chain_catches_up(fault_world, context)
            continue

        if code == CONDITION and name == "create" and call == "PutItem":
            # The one place a condition failure is expected: a create that lost the race for
            # the active set (or drew a taken id) tries again, and succeeds.
            assert reply.status == 201, (context, reply.body)
            new_tokens = {key for key in changes(before, after) if key[1] == "TOKEN"}
            assert new_tokens == {_token_key(reply.json()["token_id"])}, context
            continue

        if code == CONDITION and call == "UpdateItem":
            continue  # a revoke's own condition: test_a_revoke_that_did_not_revoke_never_says_it_did

        assert_defined_failure(reply, code)
        unexpected = changes(before, after) - operation.writes(target, calls[:position])
        assert not unexpected, (context, unexpected)
        assert not any(key[1] == "TOKEN" and key not in before for key in after), context

        # Once DynamoDB recovers, the same request works.
        again = operation.call(fault_world, target)
        assert again.status in (200, 201), (context, again.body)
        if name in ("revoke", "bulk_revoke"):
            console, token_id = target
            assert console.request("GET", f"/tokens/{token_id}").json()["status"] == "revoked", context


# -- the self-service handler (GET/DELETE /v1/token) -------------------------------------------


def self_service(method: str, context: dict[str, Any]) -> HttpResponse:
    """The token_self handler, called as API Gateway calls it behind the token authorizer."""
    module = load_handler_module(ROOT / "functions" / "token_self", "app.lambda_handler")
    result = module.lambda_handler(self_service_event(method, dict(context)), LambdaContext("TokenSelfFunction"))
    headers = {key: str(value) for key, value in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(value) for value in values)
    return HttpResponse(result["statusCode"], headers, result["body"])


def authorizer_context(app: Any, token: str, method: str) -> dict[str, Any]:
    return dict(authorize(app, token_event(token, method, "v1/token"))["context"])


@pytest.mark.parametrize("code", [code for code in CODES if code != CONDITION])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_self_service_under_faults(
    authorizer_app: Any,
    fake_apigateway: Any,
    dynamodb: Any,
    method: str,
    code: str,
) -> None:
    token = mint(["reports:read"])
    context = authorizer_context(authorizer_app, token, method)
    before = snapshot(dynamodb)
    with fail_call(0, {"GET": "GetItem", "DELETE": "UpdateItem"}[method], code) as stubber:
        reply = self_service(method, context)
        stubber.assert_no_pending_responses()
    assert_defined_failure(reply, code)
    assert not changes(before, snapshot(dynamodb))
    assert fake_apigateway.flushes == []  # nothing was revoked, so nothing to flush
    # The token still works, and the same call succeeds once DynamoDB does.
    assert policy_allows(authorize(authorizer_app, token_event(token, "GET", "v1/reports")), _arn("GET/v1/reports"))
    again = self_service(method, context)
    assert again.status == 200, again.body
    assert again.json()["status"] == ("revoked" if method == "DELETE" else "active")


def _arn(route: str) -> str:
    return f"arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev/{route}"


# -- a revoke whose condition fails for no reason the service knows ------------------------------


def _revoke_single(member: Console, token_id: str, _: Any) -> tuple[int, str]:
    response = member.request("DELETE", f"/tokens/{token_id}")
    return response.status, response.body


def _revoke_bulk(member: Console, token_id: str, _: Any) -> tuple[int, str]:
    response = member.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})
    return response.status, response.body


def _revoke_self(member: Console, token: str, app: Any) -> tuple[int, str]:
    reply = self_service("DELETE", authorizer_context(app, token, "DELETE"))
    return reply.status, reply.body


def _reported(body: dict[str, Any]) -> str:
    return str(body["results"][0]["result"] if "results" in body else body["status"])


@pytest.mark.parametrize("revoke", [_revoke_single, _revoke_bulk, _revoke_self], ids=["single", "bulk", "self"])
def test_a_revoke_that_did_not_revoke_never_says_it_did(
    authorizer_app: Any,
    fake_apigateway: Any,
    member: Console,
    revoke: Callable[[Console, str, Any], tuple[int, str]],
) -> None:
    """The revoke's conditional update fails although the token exists, belongs to the caller's
    organisation (and to the caller) and is not revoked: a condition failure the service cannot
    explain (DynamoDB's answer to a condition it did not expect to fail). Nothing was written, the
    token still works: the answer must not be a success, and must not call it revoked."""
    token = mint(["reports:read"], user=member.identity.user_id)
    token_id = token[4:20]
    with fail_call(0, "UpdateItem", CONDITION) as stubber:
        status, raw = revoke(member, token if revoke is _revoke_self else token_id, authorizer_app)
        stubber.assert_no_pending_responses()
    body = json.loads(raw)
    assert member.request("GET", f"/tokens/{token_id}").json()["status"] == "active"  # nothing was written
    assert policy_allows(authorize(authorizer_app, token_event(token, "GET", "v1/reports")), _arn("GET/v1/reports"))
    assert status == 409 and body["error"]["code"] == "conflict", (
        f"the revoke answered {status} ({_reported(body) if status == 200 else body}) "
        "although the token is still active and usable"
    )


# -- a bulk revoke that fails half-way ------------------------------------------------------------


def test_a_bulk_revoke_that_fails_half_way_still_flushes_what_it_revoked(
    member: Console,
    fake_apigateway: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three ids; the second update is throttled. The answer is a 503 (retry), but the first and
    third tokens are revoked in the table, and the console shows them revoked. API Gateway's
    cached policies for them must be flushed all the same, or they keep working for up to
    AuthorizerCacheSeconds although everything says they are revoked (README: "Revocation takes
    effect at once anyway: every revoke (single, bulk, self) calls FlushStageAuthorizersCache")."""
    monkeypatch.setattr("token_service.domain.service.BULK_REVOKE_WORKERS", 1)  # one update after another
    ids = [member.create_ok(f"bulk {index}")["token_id"] for index in range(3)]
    with fail_call(1, "UpdateItem", "ThrottlingException") as stubber:
        response = member.request("POST", "/tokens/revoke", body={"token_ids": ids})
        stubber.assert_no_pending_responses()
    assert_defined_failure(response, "ThrottlingException")
    statuses = [member.request("GET", f"/tokens/{token_id}").json()["status"] for token_id in ids]
    assert statuses == ["revoked", "active", "revoked"]
    assert fake_apigateway.flushes, "tokens were revoked but the authorizer cache was not flushed"


def test_a_bulk_revoke_whose_listing_fails_on_a_later_page_still_flushes_what_it_revoked(
    member: Console,
    fake_apigateway: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """By owner, the ids are read a page at a time and the first page is being revoked while the
    next is read. When a later page fails, even with an error nobody foresaw, the answer is a
    defined failure and the tokens already revoked have their cached policies flushed."""
    monkeypatch.setattr("token_service.storage.repository.BULK_PAGE_SIZE", 2)
    ids = [member.create_ok(f"paged {index}")["token_id"] for index in range(5)]
    repository = wiring.get_service().repository
    read_page = repository.query_token_ids
    pages = 0

    def second_page_fails(*args: Any, **kwargs: Any) -> Any:
        nonlocal pages
        pages += 1
        if pages == 2:
            raise RuntimeError("an unforeseen failure while listing")
        return read_page(*args, **kwargs)

    monkeypatch.setattr(repository, "query_token_ids", second_page_fails)
    response = member.request("POST", "/tokens/revoke", body={"owner_id": member.identity.user_id})
    assert response.status == 500 and response.json()["error"]["code"] == "internal_error"
    statuses = [member.request("GET", f"/tokens/{token_id}").json()["status"] for token_id in ids]
    assert statuses.count("revoked") == 2, statuses  # the first page (newest first) was revoked
    assert fake_apigateway.flushes, "tokens were revoked but the authorizer cache was not flushed"


# -- the authorizer: what tests/handlers/test_authorizer.py does not already cover ------------------------


@pytest.mark.parametrize("code", ["RequestLimitExceeded", CONDITION])
def test_the_authorizer_fails_closed_on_these_codes_too(authorizer_app: Any, code: str) -> None:
    token = mint(["reports:read"])
    with Stubber(authorizer_app.authorizer.repository.client) as stubber:
        stubber.add_client_error("get_item", code, f"{TABLE_ARN}: simulated", HTTP_STATUS.get(code, 400))
        with pytest.raises(Exception, match="token store unavailable") as raised:
            authorize(authorizer_app, token_event(token))
    assert type(raised.value).__name__ == "AuthorizerUnavailable"


@pytest.mark.parametrize("code", [code for code in CODES if code != "ThrottlingException"])
def test_a_failed_last_use_write_never_changes_the_decision(authorizer_app: Any, dynamodb: Any, code: str) -> None:
    """Allowed stays allowed, denied stays denied, whatever the last-use write answers."""
    reader = mint(["reports:read"])
    client = authorizer_app.authorizer.repository.client
    for route, allowed in (("GET/v1/reports", True), ("POST/v1/import/builds", False)):
        before = snapshot(dynamodb)
        with StubberFromCall(client, skip=1) as stubber:  # the read reaches the table, the write fails
            stubber.add_client_error("update_item", code, f"{TABLE_ARN}: simulated", HTTP_STATUS.get(code, 400))
            method, path = route.split("/", 1)
            result = authorize(authorizer_app, token_event(reader, method, path))
            stubber.assert_no_pending_responses()
        assert policy_allows(result, _arn(route)) is allowed, (route, code)
        assert not changes(before, snapshot(dynamodb))
