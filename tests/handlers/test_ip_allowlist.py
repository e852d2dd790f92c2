"""Per-token address allowlists through the real handlers, on moto and dynalite: POST /tokens stores
`allowed_cidrs` in normal form (a bad entry is a 400 naming it), every view shows it, a rotation
keeps it, and the real authorizer handler refuses the token from any other address (403 on REST,
`isAuthorized: false` on HTTP APIs, never allowed in TOKEN events) with its one read, and says why
in its decision line."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from support import (
    METHOD_ARN_PREFIX,
    Console,
    authorize,
    call_self_service,
    http_api_event,
    request_event,
    self_service_event,
    table,
    token_event,
)

from devserver.gateway import policy_allows
from token_service.domain.authorizer import Reason

pytestmark = [pytest.mark.dynamodb_backends]
TABLE_NAME = os.environ["TABLE_NAME"]
ROUTE = ("POST", "/v1/import/builds")
OFFICE = ["203.0.113.77/24", "2001:DB8:1::/48", "198.51.100.9", "203.0.113.0/24"]
STORED = ["198.51.100.9/32", "203.0.113.0/24", "2001:db8:1::/48"]  # normal form, unique, IPv4 first
INSIDE, OUTSIDE = "203.0.113.10", "192.0.2.10"


def from_address(event: dict[str, Any], source_ip: str | None) -> dict[str, Any]:
    if "version" in event:
        event["requestContext"]["http"]["sourceIp"] = source_ip
    else:
        event["requestContext"]["identity"]["sourceIp"] = source_ip
    return event


def decision_lines(service_log: Any) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in service_log.getvalue().splitlines()]
    return [line for line in lines if line.get("message") == "Authorization decision"]


@pytest.fixture
def office_token(member: Console) -> dict[str, Any]:
    return member.create_ok("office only", ["import:builds", "reports:read"], allowed_cidrs=OFFICE)


def test_create_stores_the_allowlist_in_normal_form_and_every_view_shows_it(
    member: Console, dynamodb: Any, office_token: dict[str, Any]
) -> None:
    assert office_token["allowed_cidrs"] == STORED
    token_id = office_token["token_id"]
    assert member.request("GET", f"/tokens/{token_id}").json()["allowed_cidrs"] == STORED
    listed = {item["token_id"]: item for item in member.request("GET", "/tokens").json()["items"]}
    assert listed[token_id]["allowed_cidrs"] == STORED
    (item,) = [item for item in table(dynamodb) if item.get("token_id") == token_id]
    assert item["allowed_cidrs"] == STORED


@pytest.mark.parametrize("allowed_cidrs", [None, []])
def test_without_an_allowlist_nothing_is_stored_and_any_address_may_use_the_token(
    member: Console, dynamodb: Any, authorizer_app: Any, allowed_cidrs: list[str] | None
) -> None:
    created = member.create_ok("anywhere", ["import:builds"], allowed_cidrs=allowed_cidrs)
    assert created["allowed_cidrs"] == []
    (item,) = [item for item in table(dynamodb) if item.get("token_id") == created["token_id"]]
    assert "allowed_cidrs" not in item
    for source_ip in (INSIDE, OUTSIDE, "2001:db8::1"):
        result = authorize(authorizer_app, from_address(request_event(created["token"]), source_ip))
        assert policy_allows(result, f"{METHOD_ARN_PREFIX}/POST/v1/import/builds")
    assert policy_allows(
        authorize(authorizer_app, token_event(created["token"], "POST", "v1/import/builds")),
        f"{METHOD_ARN_PREFIX}/POST/v1/import/builds",
    )


@pytest.mark.parametrize(
    ("cidrs", "field", "reason"),
    [
        (["10.0.0.0/8", "10.0.0.0/33"], "allowed_cidrs.1", "must end in a prefix length from /0 to /32"),
        (["10.0.0.0/8", "192.0.2.0/24", "::/0", "abc"], "allowed_cidrs.3", "is not an IPv4 or IPv6 address"),
        (["::1/129"], "allowed_cidrs.0", "must end in a prefix length from /0 to /128"),
        ([f"10.{index}.0.0/16" for index in range(21)], "allowed_cidrs", "must have at most 20 items"),
    ],
)
def test_a_bad_allowlist_is_a_400_naming_the_entry_and_creates_nothing(
    member: Console, untouched: Any, cidrs: list[str], field: str, reason: str
) -> None:
    response = member.create("bad allowlist", allowed_cidrs=cidrs)
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert [(problem["field"], problem["reason"][: len(reason)]) for problem in error["fields"]] == [(field, reason)]
    untouched()


def test_the_rest_request_authorizer_allows_inside_and_refuses_outside_with_403(
    authorizer_app: Any, office_token: dict[str, Any], service_log: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = office_token["token"]
    client = authorizer_app.authorizer.repository.client
    calls: list[str] = []
    for operation in ("get_item", "update_item"):
        original = getattr(client, operation)
        monkeypatch.setattr(
            client, operation, lambda *a, _o=original, _n=operation, **k: (calls.append(_n), _o(*a, **k))[1]
        )
    arn = f"{METHOD_ARN_PREFIX}/POST/v1/import/builds"

    allowed = authorize(authorizer_app, from_address(request_event(secret), INSIDE))
    assert policy_allows(allowed, arn)
    assert calls == ["get_item", "update_item"]  # the one read, and the first last-use write
    calls.clear()

    for source_ip in (OUTSIDE, "2001:db8:2::1", "::ffff:192.0.2.10"):
        refused = authorize(authorizer_app, from_address(request_event(secret), source_ip))
        # A policy that denies (API Gateway's ACCESS_DENIED: 403), not "Unauthorized" (401).
        assert refused["policyDocument"]["Statement"][0]["Effect"] == "Deny"
        assert not policy_allows(refused, arn)
    assert calls == ["get_item"] * 3  # one read each, no write: a refused address is not a use

    token_id = office_token["token_id"]
    lines = [line for line in decision_lines(service_log) if line["token_id"] == token_id]
    assert [(line["decision"], line["reason"], line.get("source_ip")) for line in lines] == [
        ("allow", "allowed", None),
        ("deny", "ip_not_allowed", OUTSIDE),
        ("deny", "ip_not_allowed", "2001:db8:2::1"),
        ("deny", "ip_not_allowed", "::ffff:192.0.2.10"),
    ]
    # The last use is the allowed request's address, never a refused one.
    stored = authorizer_app.authorizer.repository.client.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": f"TOKEN#{token_id}"}, "sk": {"S": "TOKEN"}}, ConsistentRead=True
    )["Item"]
    assert stored["last_used_ip"] == {"S": INSIDE}


def test_the_http_api_authorizer_answers_by_the_address(authorizer_app: Any, office_token: dict[str, Any]) -> None:
    secret = office_token["token"]
    inside = authorize(authorizer_app, from_address(http_api_event(secret, "GET", "/v1/reports"), "2001:db8:1::5"))
    assert inside["isAuthorized"] is True
    outside = authorize(authorizer_app, from_address(http_api_event(secret, "GET", "/v1/reports"), OUTSIDE))
    assert outside["isAuthorized"] is False
    missing = authorize(authorizer_app, from_address(http_api_event(secret, "GET", "/v1/reports"), None))
    assert missing["isAuthorized"] is False


def test_token_events_carry_no_address_and_never_allow_an_allowlisted_token(
    authorizer_app: Any, office_token: dict[str, Any], service_log: Any
) -> None:
    result = authorize(authorizer_app, token_event(office_token["token"], "POST", "v1/import/builds"))
    # One cached policy per token for every route and address: it allows nothing.
    assert [statement["Effect"] for statement in result["policyDocument"]["Statement"]] == ["Deny"]
    for path in ("POST/v1/import/builds", "GET/v1/reports", "GET/v1/token"):
        assert not policy_allows(result, f"{METHOD_ARN_PREFIX}/{path}")
    (line,) = [line for line in decision_lines(service_log) if line["token_id"] == office_token["token_id"]]
    assert (line["reason"], line["source_ip"]) == ("ip_not_allowed", None)


def test_a_revoked_allowlisted_token_is_a_401_from_any_address(
    member: Console, authorizer_app: Any, office_token: dict[str, Any]
) -> None:
    assert member.request("DELETE", f"/tokens/{office_token['token_id']}").status == 200
    for source_ip in (INSIDE, OUTSIDE):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(authorizer_app, from_address(request_event(office_token["token"]), source_ip))
    assert authorizer_app.authorizer.decide(f"Bearer {office_token['token']}", *ROUTE, OUTSIDE).reason is (
        Reason.REVOKED
    )


def test_rotation_keeps_the_allowlist(member: Console, authorizer_app: Any, office_token: dict[str, Any]) -> None:
    response = member.request("POST", f"/tokens/{office_token['token_id']}/rotate", body={"grace": "PT0S"})
    assert response.status == 201, response.body
    successor = response.json()
    assert successor["allowed_cidrs"] == STORED and successor["replaced"]["allowed_cidrs"] == STORED
    decide = authorizer_app.authorizer.decide
    assert decide(f"Bearer {successor['token']}", *ROUTE, INSIDE).reason is Reason.ALLOWED
    assert decide(f"Bearer {successor['token']}", *ROUTE, OUTSIDE).reason is Reason.IP_NOT_ALLOWED


def test_the_token_reads_its_own_allowlist_from_an_allowed_address(
    authorizer_app: Any, office_token: dict[str, Any]
) -> None:
    event = request_event(office_token["token"], "GET", "/v1/token")
    allowed = authorize(authorizer_app, from_address(event, INSIDE))
    status, body = call_self_service(self_service_event("GET", {**allowed["context"], "principalId": "user-member"}))
    assert status == 200, body
    assert body["allowed_cidrs"] == STORED
