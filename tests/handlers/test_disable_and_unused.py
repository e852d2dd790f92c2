"""PATCH /tokens/{token_id} (disable, enable), the organisation's unused-token policy, and the
lifecycle events of every change, through the real handlers and the authorizer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import T0, Cleanup, Console, FakeApiGateway, FakeClock, RecordingPublisher

from devserver.template import ROOT
from token_service import wiring
from token_service.domain.authorizer import Reason

pytestmark = [pytest.mark.dynamodb_backends]
DAY = 86_400
ROUTE = ("POST", "/v1/import/builds")
POLICY = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 50}


def decide(authorizer_app: Any, secret: str, at: float = T0) -> Reason:
    authorizer_app.authorizer.clock = lambda: at
    return authorizer_app.authorizer.decide(f"Bearer {secret}", *ROUTE).reason


def set_enabled(console: Console, token_id: str, enabled: Any) -> Any:
    return console.request("PATCH", f"/tokens/{token_id}", body={"enabled": enabled})


# -- disable and enable ------------------------------------------------------------------------


def test_a_disabled_token_is_refused_at_once_and_works_again_when_enabled(
    fake_apigateway: FakeApiGateway, member: Console, clock: FakeClock, authorizer_app: Any
) -> None:
    token = member.create_ok("deploy", ["import:builds"])
    assert decide(authorizer_app, token["token"]) is Reason.ALLOWED
    response = set_enabled(member, token["token_id"], False)
    assert response.status == 200, response.body
    assert response.json()["status"] == "disabled" and response.json()["disabled_by"] == "user-member"
    assert decide(authorizer_app, token["token"]) is Reason.DISABLED
    with pytest.raises(Exception, match=r"^Unauthorized$"):  # 401, as a revoked token
        authorizer_app.lambda_handler(
            {"type": "TOKEN", "authorizationToken": f"Bearer {token['token']}", "methodArn": "x"}, None
        )
    flushed = len(fake_apigateway.flushes)
    assert flushed >= 1  # every cached allow dropped before the call returned
    enabled = set_enabled(member, token["token_id"], True)
    assert enabled.status == 200 and enabled.json()["status"] == "active"
    assert enabled.json()["disabled_at"] is None
    assert decide(authorizer_app, token["token"]) is Reason.ALLOWED
    assert len(fake_apigateway.flushes) > flushed  # cached refusals dropped too


def test_disable_and_enable_are_idempotent(member: Console, clock: FakeClock) -> None:
    token = member.create_ok()
    first = set_enabled(member, token["token_id"], False).json()
    clock.set(T0 + 60)
    again = set_enabled(member, token["token_id"], False)
    assert again.status == 200 and again.json()["disabled_at"] == first["disabled_at"]
    assert set_enabled(member, token["token_id"], True).status == 200
    assert set_enabled(member, token["token_id"], True).json()["status"] == "active"


@pytest.mark.parametrize("state", ["revoked", "expired"])
def test_a_revoked_or_expired_token_can_be_neither_enabled_nor_disabled(
    member: Console, clock: FakeClock, state: str
) -> None:
    token = member.create_ok(expires_at="2030-03-20")
    assert set_enabled(member, token["token_id"], False).status == 200
    if state == "revoked":
        assert member.request("DELETE", f"/tokens/{token['token_id']}").status == 200
    else:
        clock.set(T0 + 30 * DAY)
    for enabled in (True, False):
        response = set_enabled(member, token["token_id"], enabled)
        assert response.status == 409, response.body
        assert response.json()["error"]["code"] == "token_not_active" and state in response.json()["error"]["message"]


def test_who_may_disable_is_who_may_revoke(
    admin: Console, member: Console, other_member: Console, outsider_admin: Console, clock: FakeClock
) -> None:
    token = member.create_ok()
    assert set_enabled(other_member, token["token_id"], False).status == 404
    assert set_enabled(outsider_admin, token["token_id"], False).status == 404
    by_admin = set_enabled(admin, token["token_id"], False)
    assert by_admin.status == 200 and by_admin.json()["disabled_by"] == "user-admin"
    assert set_enabled(member, "not-a-token-id", False).status == 404


@pytest.mark.parametrize(
    "body", [{}, {"enabled": "false"}, {"enabled": 0}, {"enabled": None}, {"enabled": False, "name": "x"}]
)
def test_bad_patch_bodies_are_400_naming_the_field(member: Console, clock: FakeClock, body: dict[str, Any]) -> None:
    token = member.create_ok()
    response = member.request("PATCH", f"/tokens/{token['token_id']}", body=body)
    assert response.status == 400, response.body
    fields = {problem["field"] for problem in response.json()["error"]["fields"]}
    assert fields & {"enabled", "name"}
    assert member.request("GET", f"/tokens/{token['token_id']}").json()["status"] == "active"


def test_disabled_is_a_status_of_lists_and_filters_and_bulk_revoke_includes_it(
    member: Console, clock: FakeClock
) -> None:
    active, disabled = member.create_ok("active"), member.create_ok("disabled")
    set_enabled(member, disabled["token_id"], False)

    def names(status: str) -> list[str]:
        return [item["name"] for item in member.request("GET", "/tokens", query={"status": status}).json()["items"]]

    assert names("disabled") == ["disabled"]
    assert names("active") == ["active"]
    result = member.request("POST", "/tokens/revoke", body={"owner_id": "user-member"}).json()
    assert result["revoked"] == 2
    assert sorted(names("revoked")) == ["active", "disabled"]
    assert result["results"] and {item["token_id"] for item in result["results"]} == {
        active["token_id"],
        disabled["token_id"],
    }


# -- the unused-token policy ------------------------------------------------------------------


def put_policy(admin: Console, days: Any) -> Any:
    return admin.request("PUT", "/settings", body={**POLICY, "revoke_unused_after_days": days})


@pytest.mark.parametrize("days", [29, 366, 0, "30", 30.5])
def test_the_unused_policy_takes_30_to_365_days_or_null(admin: Console, clock: FakeClock, days: Any) -> None:
    response = put_policy(admin, days)
    assert response.status == 400, response.body
    assert "revoke_unused_after_days" in {problem["field"] for problem in response.json()["error"]["fields"]}


def test_tokens_unused_for_longer_than_the_policy_are_refused_without_another_read(
    admin: Console, member: Console, clock: FakeClock, authorizer_app: Any
) -> None:
    never_used = member.create_ok("never used", ["import:builds"])
    used = member.create_ok("used", ["import:builds"])
    assert decide(authorizer_app, used["token"], T0 + 20 * DAY) is Reason.ALLOWED  # records the use
    clock.set(T0 + 31 * DAY)
    response = put_policy(admin, 30)
    assert response.status == 200 and response.json()["revoke_unused_after_days"] == 30
    reads: list[str] = []
    client = authorizer_app.authorizer.repository.client
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: reads.append(model.name))
    assert decide(authorizer_app, never_used["token"], T0 + 31 * DAY) is Reason.UNUSED
    assert reads == ["GetItem"]  # the policy travels on the token item
    assert decide(authorizer_app, used["token"], T0 + 31 * DAY) is Reason.ALLOWED
    # A token created after the policy carries it too; turning the policy off restores the first.
    fresh = member.create_ok("fresh", ["import:builds"])
    assert decide(authorizer_app, fresh["token"], T0 + 62 * DAY) is Reason.UNUSED
    assert put_policy(admin, None).json()["revoke_unused_after_days"] is None
    assert decide(authorizer_app, never_used["token"], T0 + 31 * DAY) is Reason.ALLOWED


def test_the_cleanup_revokes_unused_tokens_by_policy_and_announces_it(
    dynamodb: Any, admin: Console, member: Console, clock: FakeClock
) -> None:
    stale = member.create_ok("stale")
    fresh = member.create_ok("fresh")
    assert put_policy(admin, 30).status == 200
    service = wiring.get_service()
    service.repository.client.update_item(  # fresh was used (as the authorizer records it) 10 days later
        TableName=service.repository.table_name,
        Key={"pk": {"S": f"TOKEN#{fresh['token_id']}"}, "sk": {"S": "TOKEN"}},
        UpdateExpression="SET last_used_at = :at",
        ExpressionAttributeValues={":at": {"N": str(int(T0) + 10 * DAY)}},
    )
    cleanup = Cleanup(service)
    cleanup.run(int(T0) + 20 * DAY)
    assert cleanup.reports[-1].unused_revoked == 0
    report = cleanup.run(int(T0) + 31 * DAY)
    assert (report.unused_revoked, report.complete) == (1, True)
    stale_now = member.request("GET", f"/tokens/{stale['token_id']}").json()
    assert stale_now["status"] == "revoked" and stale_now["revoked_by"] == "policy:unused"
    assert member.request("GET", f"/tokens/{fresh['token_id']}").json()["status"] == "active"
    (event,) = [sent for sent in cleanup.publisher.sent if sent.detail_type == "TokenRevoked"]
    assert event.detail["kind"] == "policy" and event.detail["token_id"] == stale["token_id"]
    assert event.detail["actor"] == "policy:unused"
    assert cleanup.run(int(T0) + 32 * DAY).unused_revoked == 0  # nothing twice


def test_the_cleanup_corrects_a_token_that_missed_a_policy_change(
    admin: Console, member: Console, clock: FakeClock, authorizer_app: Any
) -> None:
    assert put_policy(admin, 30).status == 200
    token = member.create_ok("raced", ["import:builds"])
    service = wiring.get_service()
    service.repository.stamp_unused_policy(token["token_id"], None)  # as a create racing the change leaves it
    assert service.repository.get_grant(token["token_id"]).unused_after_days is None  # type: ignore[union-attr]
    Cleanup(service).run(int(T0) + DAY)
    assert service.repository.get_grant(token["token_id"]).unused_after_days == 30  # type: ignore[union-attr]
    assert decide(authorizer_app, token["token"], T0 + 31 * DAY) is Reason.UNUSED


# -- lifecycle events ---------------------------------------------------------------------------


def test_every_change_is_announced_with_ids_and_actor_and_never_a_secret(
    admin: Console, member: Console, clock: FakeClock, lifecycle_events: RecordingPublisher
) -> None:
    first, second, third = (member.create_ok(name) for name in ("one", "two", "three"))
    set_enabled(member, first["token_id"], False)
    set_enabled(member, first["token_id"], True)
    member.request("DELETE", f"/tokens/{first['token_id']}")
    admin.request("POST", "/tokens/revoke", body={"token_ids": [second["token_id"], third["token_id"]]})
    kinds = [(sent.detail_type, sent.detail.get("kind")) for sent in lifecycle_events.sent]
    assert kinds == [
        ("TokenCreated", None),
        ("TokenCreated", None),
        ("TokenCreated", None),
        ("TokenDisabled", None),
        ("TokenEnabled", None),
        ("TokenRevoked", "single"),
        ("TokenRevoked", "bulk"),
    ]
    bulk = lifecycle_events.sent[-1].detail
    assert bulk["count"] == 2 and sorted(bulk["token_ids"]) == sorted([second["token_id"], third["token_id"]])
    assert bulk["actor"] == "user-admin"
    assert all(sent.detail["org_id"] == "org-acme" for sent in lifecycle_events.sent)
    published = json.dumps([sent.detail for sent in lifecycle_events.sent])
    for token in (first, second, third):
        assert token["token"] not in published and token["token"][4:] not in published


def test_the_event_samples_in_events_lifecycle_carry_what_is_published(
    admin: Console, member: Console, clock: FakeClock, lifecycle_events: RecordingPublisher
) -> None:
    first, second = member.create_ok("one"), member.create_ok("two")
    set_enabled(member, first["token_id"], False)
    set_enabled(member, first["token_id"], True)
    member.request("POST", f"/tokens/{first['token_id']}/rotate", body={"grace": "P1D"})
    member.request("DELETE", f"/tokens/{second['token_id']}")
    admin.request("POST", "/tokens/revoke", body={"organisation": True})
    published = {(sent.detail_type, sent.detail.get("kind")): set(sent.detail) for sent in lifecycle_events.sent}
    samples = {}
    for path in (ROOT / "events" / "lifecycle").glob("*.json"):
        sample = json.loads(path.read_text())
        assert sample["source"] == "api-tokens"
        samples[(sample["detail-type"], sample["detail"].get("kind"))] = set(sample["detail"])
    assert len(published) == 6
    for key, fields in published.items():
        assert samples[key] == fields, key
    assert samples[("TokenRevoked", "self")] == samples[("TokenRevoked", "single")]
    assert samples[("TokenRevoked", "policy")] == samples[("TokenRevoked", "single")]


def test_the_cleanup_trusts_the_policy_not_the_registry(
    admin: Console, member: Console, clock: FakeClock, authorizer_app: Any
) -> None:
    """A registration whose policy write failed (or a policy since turned off) revokes nothing:
    the cleanup removes stale copies of the policy from tokens and the organisation from its list."""
    token = member.create_ok("old", ["import:builds"])
    service = wiring.get_service()
    service.repository.register_unused_policy("org-acme", 30)  # as a failed PUT /settings leaves it
    service.repository.stamp_unused_policy(token["token_id"], 30)
    cleanup = Cleanup(service)
    report = cleanup.run(int(T0) + 40 * DAY)
    assert (report.unused_revoked, report.complete) == (0, True)
    assert member.request("GET", f"/tokens/{token['token_id']}").json()["status"] == "active"
    assert service.repository.get_grant(token["token_id"]).unused_after_days is None  # type: ignore[union-attr]
    assert service.repository.unused_policies() == []
    assert decide(authorizer_app, token["token"], T0 + 40 * DAY) is Reason.ALLOWED
