"""DELETE /tokens/{token_id} and POST /tokens/revoke: idempotent, bounded, resumable revocation."""

from __future__ import annotations

import os
import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from support import T0, FakeClock, seed_tokens

from token_service import wiring
from token_service.domain.clock import to_iso
from token_service.domain.errors import StoreUnavailable
from token_service.domain.identity import Caller
from token_service.domain.token_format import generate_token
from token_service.http.models import CreateTokenRequest
from token_service.storage.attribute_values import deserialize, serialize

TABLE_NAME = os.environ["TABLE_NAME"]
RETENTION = int(os.environ["RETENTION_DAYS"]) * 86_400
DAY = 86_400
MEMBER = Caller("user-member", "org-acme", "member")
OTHER_MEMBER = Caller("user-member-2", "org-acme", "member")
ADMIN = Caller("user-admin", "org-acme", "admin")
GLOBEX_NAMESAKE = Caller("user-member", "org-globex", "member")  # same user id, other organisation

Console = Any  # tests/conftest.py's Console


def put_tokens(dynamodb: Any, caller: Caller, count: int, **overrides: Any) -> list[str]:
    """Tokens created just before T0 that expire 90 days after it (conftest.seed_tokens)."""
    return seed_tokens(dynamodb, caller, count, **{"start": T0 - 1000, "expires_at": int(T0) + 90 * DAY, **overrides})


def table_item(dynamodb: Any, token_id: str) -> dict[str, Any] | None:
    key = serialize({"pk": f"TOKEN#{token_id}", "sk": "TOKEN"})
    item = dynamodb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True).get("Item")
    return deserialize(item) if item else None


def token_items(dynamodb: Any) -> dict[str, dict[str, Any]]:
    """Every token item in the table, by token id."""
    items: dict[str, dict[str, Any]] = {}
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True):
        for raw in page["Items"]:
            item = deserialize(raw)
            if item["sk"] == "TOKEN":
                items[item["token_id"]] = item
    return items


def revoked_ids(dynamodb: Any) -> set[str]:
    return {token_id for token_id, item in token_items(dynamodb).items() if "revoked_at" in item}


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code
    return error


def bulk(console: Console, body: Any) -> Any:
    return console.request("POST", "/tokens/revoke", body=body)


# -- single revoke ------------------------------------------------------------------------


def test_revoke_marks_the_token_revoked(member: Console, clock: FakeClock) -> None:
    created = member.create_ok()
    clock.now += 3600

    response = member.request("DELETE", f"/tokens/{created['token_id']}")

    assert response.status == 200, response.body
    revoked = response.json()
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] == to_iso(int(clock.now))
    assert revoked["revoked_by"] == "user-member"
    unchanged = {key: value for key, value in created.items() if key not in {"token", "warning"}}
    assert {key: revoked[key] for key in unchanged if key not in {"status", "revoked_at", "revoked_by"}} == {
        key: value for key, value in unchanged.items() if key not in {"status", "revoked_at", "revoked_by"}
    }
    assert member.request("GET", f"/tokens/{created['token_id']}").json() == revoked


def test_admin_revokes_a_members_token(admin: Console, member: Console, clock: FakeClock) -> None:
    created = member.create_ok()

    response = admin.request("DELETE", f"/tokens/{created['token_id']}")

    assert response.json()["revoked_by"] == "user-admin"
    assert member.request("GET", f"/tokens/{created['token_id']}").json()["status"] == "revoked"


@pytest.mark.dynamodb_backends
def test_revoking_twice_answers_the_same(member: Console, dynamodb: Any, clock: FakeClock) -> None:
    created = member.create_ok()
    first = member.request("DELETE", f"/tokens/{created['token_id']}")
    stored = table_item(dynamodb, created["token_id"])
    clock.now += 7 * DAY

    second = member.request("DELETE", f"/tokens/{created['token_id']}")

    assert second.status == first.status == 200
    assert second.json() == first.json()
    assert second.json()["revoked_at"] == to_iso(int(T0))
    assert table_item(dynamodb, created["token_id"]) == stored, "a repeat must not rewrite revoked_at or ttl"


def test_revoking_an_expired_token(member: Console, clock: FakeClock) -> None:
    created = member.create_ok(expires_at="2030-03-18")
    clock.now += 5 * DAY
    assert member.request("GET", f"/tokens/{created['token_id']}").json()["status"] == "expired"

    response = member.request("DELETE", f"/tokens/{created['token_id']}")

    assert response.status == 200
    assert response.json()["status"] == "revoked"


@pytest.mark.parametrize(
    "token_id",
    [
        "unknown-well-formed",
        "abc",
        "0123456789abcde",  # 15 characters
        "0123456789abcdefg",  # 17 characters
        "0123456789abcde-",
        "0123456789abcde%21",
        "TOKEN%230123456789abcdef",
        "lgk_0123456789abcdef",
        "..",
    ],
)
def test_revoking_an_unknown_or_malformed_id_is_404(member: Console, token_id: str) -> None:
    if token_id == "unknown-well-formed":
        token_id = generate_token("lgk").token_id
    member.create_ok()

    response = member.request("DELETE", f"/tokens/{token_id}")

    assert_error(response, 404, "not_found")
    assert response.json()["error"]["message"] == "No such token."


def test_revoking_a_full_token_instead_of_its_id_is_404_and_leaves_it_active(member: Console) -> None:
    created = member.create_ok()

    response = member.request("DELETE", f"/tokens/{created['token']}")

    assert_error(response, 404, "not_found")
    assert member.request("GET", f"/tokens/{created['token_id']}").json()["status"] == "active"


# -- retention (ttl) ----------------------------------------------------------------------


@pytest.mark.dynamodb_backends
def test_ttl_is_expiry_plus_retention_at_create_then_revocation_plus_retention(
    member: Console, dynamodb: Any, clock: FakeClock
) -> None:
    created = member.create_ok(expires_at="2030-06-30")
    stored = table_item(dynamodb, created["token_id"])
    assert stored is not None
    assert stored["expires_at"] == datetime(2030, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    assert stored["ttl"] == stored["expires_at"] + 30 * DAY

    clock.now += 2 * DAY + 17
    member.request("DELETE", f"/tokens/{created['token_id']}")

    revoked = table_item(dynamodb, created["token_id"])
    assert revoked is not None
    assert revoked["revoked_at"] == int(clock.now)
    assert revoked["ttl"] == int(clock.now) + 30 * DAY


def test_bulk_revoke_sets_the_same_ttl(member: Console, dynamodb: Any, clock: FakeClock) -> None:
    created = member.create_ok()
    clock.now += 100

    bulk(member, {"token_ids": [created["token_id"]]})

    stored = table_item(dynamodb, created["token_id"])
    assert stored is not None
    assert (stored["revoked_at"], stored["ttl"]) == (int(clock.now), int(clock.now) + 30 * DAY)


@pytest.mark.dynamodb_backends
def test_revoke_never_resurrects_a_deleted_item(member: Console, dynamodb: Any) -> None:
    created = member.create_ok()
    dynamodb.delete_item(TableName=TABLE_NAME, Key=serialize({"pk": f"TOKEN#{created['token_id']}", "sk": "TOKEN"}))

    single = member.request("DELETE", f"/tokens/{created['token_id']}")
    many = bulk(member, {"token_ids": [created["token_id"]]})

    assert_error(single, 404, "not_found")
    assert many.json()["results"] == [{"token_id": created["token_id"], "result": "not_found"}]
    assert table_item(dynamodb, created["token_id"]) is None


# -- bulk by ids --------------------------------------------------------------------------


@pytest.mark.dynamodb_backends
def test_bulk_revoke_reports_each_id(member: Console, other_member: Console, dynamodb: Any) -> None:
    active = member.create_ok(name="active")["token_id"]
    already = member.create_ok(name="already")["token_id"]
    first_revocation = member.request("DELETE", f"/tokens/{already}").json()["revoked_at"]
    colleagues = other_member.create_ok()["token_id"]
    colleague_item = table_item(dynamodb, colleagues)
    unknown = generate_token("lgk").token_id
    ids = [active, already, unknown, "not-a-token", colleagues, active]

    response = bulk(member, {"token_ids": ids})

    assert response.status == 200, response.body
    body = response.json()
    assert body["results"] == [
        {"token_id": active, "result": "revoked"},
        {"token_id": already, "result": "already_revoked"},
        {"token_id": unknown, "result": "not_found"},
        {"token_id": "not-a-token", "result": "not_found"},
        {"token_id": colleagues, "result": "not_found"},
    ]
    assert (body["revoked"], body["already_revoked"], body["not_found"]) == (1, 1, 3)
    assert member.request("GET", f"/tokens/{already}").json()["revoked_at"] == first_revocation
    assert table_item(dynamodb, colleagues) == colleague_item


def test_bulk_revoke_accepts_100_ids(member: Console, dynamodb: Any) -> None:
    ids = put_tokens(dynamodb, MEMBER, 100)

    response = bulk(member, {"token_ids": ids})

    assert response.status == 200, response.body
    assert response.json()["revoked"] == 100
    assert [result["token_id"] for result in response.json()["results"]] == ids
    assert revoked_ids(dynamodb) == set(ids)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token_ids": [f"{index:016d}" for index in range(101)]}, "token_ids"),
        ({"token_ids": []}, "token_ids"),
        ({"token_ids": "0123456789abcdef"}, "token_ids"),
        ({"token_ids": ["OWN"], "owner_id": "user-member"}, None),
        ({"token_ids": ["OWN"], "organisation": True}, None),
        ({"owner_id": "user-member", "organisation": True}, None),
        ({"token_ids": ["OWN"], "owner_id": "user-member", "organisation": True}, None),
        ({}, None),
        ({"organisation": False}, None),
        ({"organisation": "true"}, "organisation"),
        ({"owner_id": ""}, "owner_id"),
        ([], None),
        ("not json", None),
    ],
)
def test_bulk_revoke_refuses_bad_selectors(member: Console, dynamodb: Any, body: Any, field: str | None) -> None:
    own = member.create_ok()["token_id"]
    if isinstance(body, dict) and body.get("token_ids") == ["OWN"]:
        body = {**body, "token_ids": [own]}

    response = bulk(member, body)

    error = assert_error(response, 400, "invalid_request")
    if field is not None:
        assert field in [problem["field"] for problem in error["fields"]]
    assert revoked_ids(dynamodb) == set()


# -- bulk by owner and organisation -------------------------------------------------------


def test_bulk_revoke_by_owner_revokes_all_of_a_users_tokens(
    admin: Console, member: Console, other_member: Console, dynamodb: Any
) -> None:
    settings = admin.request(
        "PUT",
        "/settings",
        body={"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 1000},
    )
    assert settings.status == 200, settings.body
    # Past the default cap of 50 through the service (so the raised cap is what allows it),
    # the rest written directly: moto's transactions slow down as the table grows.
    service = wiring.get_service()
    created = [
        service.create_token(
            MEMBER, CreateTokenRequest(name=f"token {index}", scopes=["reports:read"]).command()
        ).record.token_id
        for index in range(60)
    ]
    created += put_tokens(dynamodb, MEMBER, 200)
    colleagues = put_tokens(dynamodb, OTHER_MEMBER, 3)
    namesakes = put_tokens(dynamodb, GLOBEX_NAMESAKE, 3)
    untouched = {token_id: table_item(dynamodb, token_id) for token_id in colleagues + namesakes}

    response = bulk(member, {"owner_id": "user-member"})

    assert response.status == 200, response.body
    body = response.json()
    assert body["revoked"] == 260
    assert sorted(result["token_id"] for result in body["results"]) == sorted(created)
    assert {result["result"] for result in body["results"]} == {"revoked"}
    assert member.request("GET", "/tokens", query={"status": "active"}).json()["items"] == []
    assert revoked_ids(dynamodb) == set(created)
    assert {token_id: table_item(dynamodb, token_id) for token_id in untouched} == untouched

    again = bulk(member, {"owner_id": "user-member"})
    assert again.json() == {"results": [], "revoked": 0, "already_revoked": 0, "not_found": 0}


def test_bulk_revoke_by_owner_as_admin(admin: Console, dynamodb: Any, clock: FakeClock) -> None:
    ids = put_tokens(dynamodb, MEMBER, 30)
    others = put_tokens(dynamodb, OTHER_MEMBER, 5)

    response = bulk(admin, {"owner_id": "user-member"})

    assert response.json()["revoked"] == 30
    assert revoked_ids(dynamodb) == set(ids)
    assert all(table_item(dynamodb, token_id)["revoked_by"] == "user-admin" for token_id in ids)  # type: ignore[index]
    assert not set(others) & revoked_ids(dynamodb)


def test_bulk_revoke_of_the_organisation(admin: Console, dynamodb: Any, clock: FakeClock) -> None:
    clock.now = T0 + 1000
    active = (
        put_tokens(dynamodb, MEMBER, 100) + put_tokens(dynamodb, OTHER_MEMBER, 100) + put_tokens(dynamodb, ADMIN, 60)
    )
    already = put_tokens(dynamodb, MEMBER, 5, revoked_at=int(T0) - 50)
    expired = put_tokens(dynamodb, OTHER_MEMBER, 5, expires_at=int(T0) - 10)
    globex = put_tokens(dynamodb, GLOBEX_NAMESAKE, 20)
    before = token_items(dynamodb)

    response = bulk(admin, {"organisation": True})

    assert response.status == 200, response.body
    body = response.json()
    assert (body["revoked"], body["already_revoked"], body["not_found"]) == (260, 0, 0)
    assert sorted(result["token_id"] for result in body["results"]) == sorted(active)
    after = token_items(dynamodb)
    for token_id in active:
        assert after[token_id]["revoked_at"] == int(clock.now)
        assert after[token_id]["revoked_by"] == "user-admin"
    for token_id in already + expired + globex:
        assert after[token_id] == before[token_id]
    listing = admin.request("GET", "/tokens", query={"all_users": "true", "status": "active", "limit": "100"})
    assert listing.json()["items"] == []


# -- resumable after a failure half-way ---------------------------------------------------


class FailingAfter:
    """Wraps repository.revoke_quietly (bulk revoke's update): the first `allowed` calls go
    through, every later one fails."""

    def __init__(self, revoke: Any, allowed: int) -> None:
        self.revoke = revoke
        self.allowed = allowed
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.calls += 1
            fail = self.calls > self.allowed
        if fail:
            raise StoreUnavailable()
        return self.revoke(*args, **kwargs)


@pytest.mark.parametrize(
    ("mode", "total", "allowed"),
    [("owner", 70, 25), ("organisation", 70, 30), ("token_ids", 100, 40)],
)
def test_bulk_revoke_resumes_after_a_failure(
    admin: Console,
    member: Console,
    dynamodb: Any,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    total: int,
    allowed: int,
) -> None:
    if mode == "organisation":
        ids = put_tokens(dynamodb, MEMBER, total // 2) + seed_tokens(
            dynamodb, OTHER_MEMBER, total - total // 2, start=T0 - 1000, expires_at=int(T0) + 90 * DAY
        )
    else:
        ids = put_tokens(dynamodb, MEMBER, total)
    console, body = {
        "owner": (member, {"owner_id": "user-member"}),
        "organisation": (admin, {"organisation": True}),
        "token_ids": (member, {"token_ids": ids}),
    }[mode]
    repository = wiring.get_service().repository

    with monkeypatch.context() as patch:
        patch.setattr(repository, "revoke_quietly", FailingAfter(repository.revoke_quietly, allowed))
        failed = bulk(console, body)

    assert_error(failed, 503, "service_unavailable")
    assert int(failed.headers["Retry-After"]) >= 1
    done_first = revoked_ids(dynamodb)
    assert len(done_first) == allowed, "the revocations made before the failure are kept"

    rerun = bulk(console, body)

    assert rerun.status == 200, rerun.body
    counts = Counter(result["result"] for result in rerun.json()["results"])
    assert counts["revoked"] == rerun.json()["revoked"] == total - allowed
    assert {result["token_id"] for result in rerun.json()["results"] if result["result"] == "revoked"}.isdisjoint(
        done_first
    )
    if mode == "token_ids":
        assert counts["already_revoked"] == allowed
    assert revoked_ids(dynamodb) == set(ids)
    query = {"all_users": "true", "status": "active"}
    assert admin.request("GET", "/tokens", query=query).json()["items"] == []


@pytest.mark.parametrize("owner_id", ["a#b", "nul\u0000", "x" * 129])
def test_bulk_revoke_by_owner_refuses_an_invalid_user_id(admin: Console, owner_id: str) -> None:
    response = admin.request("POST", "/tokens/revoke", body={"owner_id": owner_id})
    assert response.status == 400
    assert response.json()["error"]["fields"][0]["field"] == "owner_id"
