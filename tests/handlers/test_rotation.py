"""POST /tokens/{token_id}/rotate and POST /v1/token/rotate: a new secret, the old one kept for a
grace period that never lengthens its life, linked both ways, through the real handlers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import T0, Console, FakeApiGateway, FakeClock, RecordingPublisher, load_event, set_cap

from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import ROOT
from token_service.domain.authorizer import Reason
from token_service.domain.clock import to_iso

pytestmark = [pytest.mark.dynamodb_backends]
DAY = 86_400
ROUTE = ("POST", "/v1/import/builds")


def rotate(console: Console, token_id: str, grace: str = "P1D", **fields: Any) -> Any:
    return console.request("POST", f"/tokens/{token_id}/rotate", body={"grace": grace, **fields})


def decide(authorizer_app: Any, secret: str, at: float) -> Reason:
    authorizer_app.authorizer.clock = lambda: at
    return authorizer_app.authorizer.decide(f"Bearer {secret}", *ROUTE).reason


def test_rotation_mints_a_linked_successor_and_keeps_the_old_token_for_the_grace_period(
    member: Console, clock: FakeClock, authorizer_app: Any, lifecycle_events: RecordingPublisher
) -> None:
    old = member.create_ok("deploy", ["import:builds"], expires_at="2030-05-01")
    response = rotate(member, old["token_id"], "P1D")
    assert response.status == 201, response.body
    assert response.headers["Cache-Control"] == "no-store"
    new = response.json()
    assert new["token"] != old["token"] and new["token_id"] != old["token_id"]
    assert (new["name"], new["scopes"], new["owner_id"]) == ("deploy", ["import:builds"], "user-member")
    assert new["rotated_from"] == old["token_id"]
    assert new["replaced"]["rotated_to"] == new["token_id"]
    assert new["replaced"]["expires_at"] == to_iso(int(T0) + DAY)
    # Stored as answered: both links, and the old token's shortened life.
    stored_old = member.request("GET", f"/tokens/{old['token_id']}").json()
    assert stored_old["rotated_to"] == new["token_id"] and stored_old["expires_at"] == to_iso(int(T0) + DAY)
    assert "token" not in stored_old
    # Both work during the grace period; after it, only the new one.
    assert decide(authorizer_app, old["token"], T0 + 60) is Reason.ALLOWED
    assert decide(authorizer_app, new["token"], T0 + 60) is Reason.ALLOWED
    assert decide(authorizer_app, old["token"], T0 + DAY) is Reason.EXPIRED
    assert decide(authorizer_app, new["token"], T0 + DAY) is Reason.ALLOWED
    (event,) = [sent for sent in lifecycle_events.sent if sent.detail_type == "TokenRotated"]
    assert event.detail["token_id"] == old["token_id"] and event.detail["successor_id"] == new["token_id"]
    assert event.detail["actor"] == "user-member"
    assert old["token"] not in json.dumps(event.detail) and new["token"] not in json.dumps(event.detail)


def test_no_grace_stops_the_old_token_at_once_and_flushes_every_cache(
    fake_apigateway: FakeApiGateway, member: Console, clock: FakeClock, authorizer_app: Any
) -> None:
    old = member.create_ok("deploy", ["import:builds"])
    new = rotate(member, old["token_id"], "PT0S").json()
    assert decide(authorizer_app, old["token"], T0) is Reason.EXPIRED
    assert decide(authorizer_app, new["token"], T0) is Reason.ALLOWED
    assert fake_apigateway.flushes and fake_apigateway.resets  # cached allows of the old token are dropped


def test_the_grace_period_never_lengthens_the_old_tokens_life(member: Console, clock: FakeClock) -> None:
    old = member.create_ok(expires_at=to_iso(int(T0) + 3600))
    new = rotate(member, old["token_id"], "P30D").json()
    assert new["replaced"]["expires_at"] == to_iso(int(T0) + 3600)


def test_rotating_a_rotated_token_is_409_naming_its_successor(member: Console, clock: FakeClock) -> None:
    old = member.create_ok()
    successor = rotate(member, old["token_id"]).json()["token_id"]
    again = rotate(member, old["token_id"])
    assert again.status == 409, again.body
    assert again.json()["error"]["code"] == "already_rotated"
    assert successor in again.json()["error"]["message"]
    assert rotate(member, successor).status == 201  # the successor rotates in turn


@pytest.mark.parametrize("state", ["revoked", "disabled", "expired"])
def test_only_an_active_token_can_be_rotated(member: Console, clock: FakeClock, state: str) -> None:
    token = member.create_ok(expires_at=to_iso(int(T0) + 3600))
    if state == "revoked":
        assert member.request("DELETE", f"/tokens/{token['token_id']}").status == 200
    elif state == "disabled":
        assert member.request("PATCH", f"/tokens/{token['token_id']}", body={"enabled": False}).status == 200
    else:
        clock.set(T0 + 7200)
    response = rotate(member, token["token_id"])
    assert response.status == 409, response.body
    assert response.json()["error"]["code"] == "token_not_active"
    assert state in response.json()["error"]["message"]
    listed = member.request("GET", "/tokens").json()["items"]
    assert len(listed) == 1  # no successor was minted


def test_who_may_rotate_is_who_may_revoke(
    admin: Console, member: Console, other_member: Console, outsider_admin: Console, clock: FakeClock
) -> None:
    token = member.create_ok("members")
    assert rotate(other_member, token["token_id"]).status == 404
    assert rotate(outsider_admin, token["token_id"]).status == 404
    by_admin = rotate(admin, token["token_id"])
    assert by_admin.status == 201, by_admin.body
    assert by_admin.json()["owner_id"] == "user-member"  # the owner keeps the token
    assert by_admin.json()["created_by"] == "user-admin"


def test_the_cap_counts_a_token_in_its_grace_period(admin: Console, member: Console, clock: FakeClock) -> None:
    set_cap(admin, 2)
    first, _ = member.create_ok("one"), member.create_ok("two")
    refused = rotate(member, first["token_id"], "P1D")
    assert refused.status == 409 and refused.json()["error"]["code"] == "active_token_limit_reached"
    assert rotate(member, first["token_id"], "PT0S").status == 201  # the old one stops: a slot frees


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace": "PT5M"}, "grace"),
        ({}, "grace"),
        ({"grace": "P1D", "expires_at": "2020-01-01"}, "expires_at"),
        ({"grace": "P1D", "expires_at": "2099-01-01"}, "expires_at"),
        ({"grace": "P1D", "name": "renamed"}, "name"),
    ],
)
def test_bad_rotation_requests_are_400_naming_the_field(
    member: Console, clock: FakeClock, body: dict[str, Any], field: str
) -> None:
    token = member.create_ok()
    response = member.request("POST", f"/tokens/{token['token_id']}/rotate", body=body)
    assert response.status == 400, response.body
    assert field in {problem["field"] for problem in response.json()["error"]["fields"]}
    assert len(member.request("GET", "/tokens").json()["items"]) == 1


def self_rotation_event(token: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    event = load_event("token_self_rotate.json")
    event["requestContext"]["authorizer"].update(
        token_id=token["token_id"], org_id="org-acme", owner_id=token["owner_id"]
    )
    event["body"] = json.dumps(body)
    return event


def call_self_rotation(event: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    module = load_handler_module(ROOT / "functions" / "token_self", "app.lambda_handler")
    result = module.lambda_handler(event, LambdaContext(function_name="TokenSelfFunction"))
    return result["statusCode"], result["headers"], json.loads(result["body"])


def test_a_token_rotates_itself(member: Console, clock: FakeClock, authorizer_app: Any) -> None:
    token = member.create_ok("pipeline", ["import:builds"])
    status, headers, body = call_self_rotation(self_rotation_event(token, {"grace": "PT1H"}))
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    assert body["rotated_from"] == token["token_id"] and body["created_by"] == f"token:{token['token_id']}"
    assert body["replaced"]["expires_at"] == to_iso(int(T0) + 3600)
    assert decide(authorizer_app, body["token"], T0) is Reason.ALLOWED
    # The old token is now rotated: rotating it again names its successor.
    status, _, again = call_self_rotation(self_rotation_event(token, {"grace": "PT1H"}))
    assert status == 409 and body["token_id"] in again["error"]["message"]


def test_self_rotation_refuses_a_revoked_token_and_bad_bodies(member: Console, clock: FakeClock) -> None:
    token = member.create_ok()
    status, _, body = call_self_rotation(self_rotation_event(token, {"grace": "forever"}))
    assert status == 400 and body["error"]["fields"][0]["field"] == "grace"
    assert member.request("DELETE", f"/tokens/{token['token_id']}").status == 200
    status, _, body = call_self_rotation(self_rotation_event(token, {"grace": "P1D"}))
    assert status == 409 and body["error"]["code"] == "token_not_active"
