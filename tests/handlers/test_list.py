"""GET /tokens: order, pagination, cursor checks, status filters, item shape and read cost."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any

import pytest
from support import GLOBEX_MEMBER, OTHER_MEMBER, T0, FakeClock, seed_tokens

from token_service import wiring
from token_service.domain.identity import Caller
from token_service.domain.token_format import token_regex
from token_service.http.models import CreateTokenRequest
from token_service.storage.attribute_values import deserialize, serialize

TABLE_NAME = os.environ["TABLE_NAME"]
DAY = 86_400
DOCUMENTED_FIELDS = {
    "token_id",
    "name",
    "owner_id",
    "scopes",
    "status",
    "created_at",
    "created_by",
    "expires_at",
    "revoked_at",
    "revoked_by",
    "last_used_at",
    "last_used_ip",
    "disabled_at",
    "disabled_by",
    "rotated_from",
    "rotated_to",
    "display_hint",
    "allowed_cidrs",
}
SECRET_PATTERN = re.compile(token_regex("lgk"))
MEMBER = Caller("user-member", "org-acme", "member")
ADMIN = Caller("user-admin", "org-acme", "admin")

Console = Any  # tests/conftest.py's Console


def create_via_service(caller: Caller, count: int, clock: FakeClock, step: float = 0.001) -> list[str]:
    """Creates tokens through the service (policy, active set, transaction), oldest first."""
    service = wiring.get_service()
    ids = []
    for index in range(count):
        clock.now += step
        created = service.create_token(
            caller, CreateTokenRequest(name=f"token {index}", scopes=["reports:read"]).command()
        )
        ids.append(created.record.token_id)
    return ids


def listed_ids(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [item["token_id"] for item in response.json()["items"]]


def walk(console: Console, limit: int, query: dict[str, str] | None = None) -> list[list[str]]:
    """Follows `next` until it is absent; returns the token ids of every page."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        params = {**(query or {}), "limit": str(limit)}
        if cursor is not None:
            params["next"] = cursor
        response = console.request("GET", "/tokens", query=params)
        pages.append(listed_ids(response))
        cursor = response.json()["next"]
        if cursor is None:
            return pages
        assert re.fullmatch(r"[A-Za-z0-9_-]+", cursor), "the cursor must be usable in a URL as it is"
        assert len(pages) <= 200, "pagination does not terminate"


def assert_field_error(response: Any, field: str) -> None:
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [problem["field"] for problem in error["fields"]]


def encode(payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> dict[str, str]:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def table_item(dynamodb: Any, token_id: str) -> dict[str, Any]:
    key = serialize({"pk": f"TOKEN#{token_id}", "sk": "TOKEN"})
    return deserialize(dynamodb.get_item(TableName=TABLE_NAME, Key=key, ConsistentRead=True)["Item"])


# -- order and pagination -----------------------------------------------------------------


def test_newest_first_even_within_one_second(member: Console, clock: FakeClock) -> None:
    ids = []
    for index in range(6):
        clock.now += 0.001 if index % 2 else 1.5  # some within the same second, some not
        ids.append(member.create_ok(name=f"token {index}")["token_id"])

    response = member.request("GET", "/tokens")

    assert listed_ids(response) == ids[::-1]
    created = [item["created_at"] for item in response.json()["items"]]
    assert created == sorted(created, reverse=True)


def test_organisation_listing_is_newest_first_across_users(
    admin: Console, member: Console, other_member: Console, clock: FakeClock
) -> None:
    ids = []
    for console in [member, admin, other_member, member, other_member, admin]:
        clock.now += 0.5
        ids.append(console.create_ok()["token_id"])

    assert listed_ids(admin.request("GET", "/tokens", query={"all_users": "true"})) == ids[::-1]


def test_pagination_visits_every_token_exactly_once(member: Console, clock: FakeClock) -> None:
    created = create_via_service(MEMBER, 45, clock)
    newest_first = created[::-1]

    for limit in (1, 7, 10, 44, 45, 100):
        pages = walk(member, limit)
        flat = [token_id for page in pages for token_id in page]
        assert flat == newest_first, f"limit={limit}"
        # Every page but the last is full; only the last may be short (or empty).
        assert all(len(page) == limit for page in pages[:-1]), f"limit={limit}"
        assert len(pages) in (-(-45 // limit), -(-45 // limit) + 1), f"limit={limit}"


def test_pagination_of_the_organisation_listing(
    admin: Console, member: Console, other_member: Console, dynamodb: Any
) -> None:
    ids = set(seed_tokens(dynamodb, MEMBER, 20)) | set(seed_tokens(dynamodb, OTHER_MEMBER, 15, start=T0 + 0.005))
    seed_tokens(dynamodb, GLOBEX_MEMBER, 10)

    pages = walk(admin, 8, {"all_users": "true"})

    flat = [token_id for page in pages for token_id in page]
    assert len(flat) == len(set(flat)) == 35
    assert set(flat) == ids


def test_pagination_with_a_status_filter(member: Console, dynamodb: Any, clock: FakeClock) -> None:
    ids = seed_tokens(dynamodb, MEMBER, 30)
    revoked = set(ids[::3])
    for token_id in revoked:
        assert member.request("DELETE", f"/tokens/{token_id}").status == 200

    revoked_pages = walk(member, 4, {"status": "revoked"})
    active_pages = walk(member, 4, {"status": "active"})

    revoked_listed = [token_id for page in revoked_pages for token_id in page]
    active_listed = [token_id for page in active_pages for token_id in page]
    assert sorted(revoked_listed) == sorted(revoked)
    assert sorted(active_listed) == sorted(set(ids) - revoked)
    assert all(len(page) <= 4 for page in revoked_pages + active_pages)


def test_limit_is_capped_at_100(member: Console, dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_tokens(dynamodb, MEMBER, 150)
    limits = spy_on_queries(monkeypatch)

    first = member.request("GET", "/tokens", query={"limit": "1000000"})

    assert len(listed_ids(first)) == 100
    assert [call["params"]["Limit"] for call in limits] == [100]
    second = member.request("GET", "/tokens", query={"limit": "1000000", "next": first.json()["next"]})
    assert len(listed_ids(second)) == 50
    assert set(listed_ids(first)).isdisjoint(listed_ids(second))


def test_default_page_size(member: Console, dynamodb: Any) -> None:
    seed_tokens(dynamodb, MEMBER, 25)

    response = member.request("GET", "/tokens")

    assert len(listed_ids(response)) == 20
    assert response.json()["next"] is not None


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "1e3", "ten"])
def test_invalid_limit_is_a_400_naming_limit(member: Console, limit: str) -> None:
    assert_field_error(member.request("GET", "/tokens", query={"limit": limit}), "limit")


# -- forged cursors -----------------------------------------------------------------------


def forged(name: str, cursors: dict[str, str]) -> str:
    own = decode(cursors["member"])
    globex_id = cursors["globex_token"]
    sort_key = own["gsi1sk"]
    builders = {
        "garbage": lambda: "garbage",
        "punctuation": lambda: "!!!!$$$$",
        "non_ascii": lambda: "é" * 12,
        "padding_only": lambda: "====",
        "not_json": lambda: encode(b"\xff\xfe not json at all"),
        "json_list": lambda: encode([own]),
        "json_string": lambda: encode("TOKEN#abc"),
        "json_empty_object": lambda: encode({}),
        "json_number_values": lambda: encode({**own, "gsi1sk": 17}),
        "json_extra_key": lambda: encode({**own, "gsi2pk": "ORG#org-acme"}),
        "json_missing_key": lambda: encode({k: v for k, v in own.items() if k != "pk"}),
        "wrong_sort_key": lambda: encode({**own, "sk": "ACTIVE_TOKENS"}),
        "wrong_base_key": lambda: encode({**own, "pk": "ORG#org-acme#USER#user-member"}),
        "truncated": lambda: cursors["member"][: len(cursors["member"]) // 2],
        "too_long": lambda: cursors["member"] * 30,
        "other_users_listing": lambda: cursors["other_member"],
        "organisation_listing": lambda: cursors["admin_all_users"],
        "other_org_partition": lambda: encode(
            {
                "pk": f"TOKEN#{globex_id}",
                "sk": "TOKEN",
                "gsi1pk": "ORG#org-globex#USER#user-member",
                "gsi1sk": sort_key,
            }
        ),
        "other_org_partition_same_user_id": lambda: encode(
            {**own, "gsi1pk": own["gsi1pk"].replace("org-acme", "org-globex")}
        ),
    }
    return builders[name]()


FORGERIES = [
    "garbage",
    "punctuation",
    "non_ascii",
    "padding_only",
    "not_json",
    "json_list",
    "json_string",
    "json_empty_object",
    "json_number_values",
    "json_extra_key",
    "json_missing_key",
    "wrong_sort_key",
    "wrong_base_key",
    "truncated",
    "too_long",
    "other_users_listing",
    "organisation_listing",
    "other_org_partition",
    "other_org_partition_same_user_id",
]


@pytest.mark.dynamodb_backends
@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_cursor_is_a_400_naming_next(
    member: Console, cursors: dict[str, str], monkeypatch: pytest.MonkeyPatch, forgery: str
) -> None:
    queries = spy_on_queries(monkeypatch)

    response = member.request("GET", "/tokens", query={"next": forged(forgery, cursors), "limit": "5"})

    assert_field_error(response, "next")
    assert queries == [], "a refused cursor must not reach DynamoDB"


def test_org_cursor_crafted_for_another_org_is_refused(admin: Console, cursors: dict[str, str]) -> None:
    own = decode(cursors["admin_all_users"])
    crafted = encode({**own, "gsi2pk": "ORG#org-globex", "pk": f"TOKEN#{cursors['globex_token']}"})

    response = admin.request("GET", "/tokens", query={"next": crafted, "all_users": "true"})

    assert_field_error(response, "next")


def test_admin_cannot_reuse_a_member_cursor_for_the_organisation_listing(
    admin: Console, cursors: dict[str, str]
) -> None:
    response = admin.request("GET", "/tokens", query={"next": cursors["member"], "all_users": "true"})

    assert_field_error(response, "next")


def test_genuine_cursor_still_works(member: Console, cursors: dict[str, str]) -> None:
    response = member.request("GET", "/tokens", query={"next": cursors["member"], "limit": "5"})

    assert len(listed_ids(response)) == 2


@pytest.mark.dynamodb_backends
def test_cursor_with_an_empty_sort_key_is_refused_before_dynamodb(
    member: Console, cursors: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB (and dynalite) reject an ExclusiveStartKey whose key attribute is an empty
    string with a ValidationException, which the service answers with a 500; moto accepts
    it. A cursor of the right partition with an emptied sort key must be refused as a bad `next`."""
    queries = spy_on_queries(monkeypatch)
    crafted = encode({**decode(cursors["member"]), "gsi1sk": ""})

    response = member.request("GET", "/tokens", query={"next": crafted})

    assert response.status != 500, "a crafted cursor must never make the service fail"
    assert_field_error(response, "next")
    assert queries == []


@pytest.mark.dynamodb_backends
@pytest.mark.parametrize("change", ["later_sort_key", "other_orgs_token_id", "unknown_token_id"])
def test_edited_cursor_within_the_own_partition_never_fails(
    member: Console, cursors: dict[str, str], change: str
) -> None:
    """An edited cursor that still names the caller's own partition may be honoured or
    refused, but it can only ever reach the caller's own tokens and never makes a 500."""
    own = decode(cursors["member"])
    edited = {
        "later_sort_key": {**own, "gsi1sk": "99999999999999999#zzzzzzzzzzzzzzzz"},
        "other_orgs_token_id": {**own, "pk": f"TOKEN#{cursors['globex_token']}"},
        "unknown_token_id": {**own, "pk": "TOKEN#0000000000000000"},
    }[change]

    response = member.request("GET", "/tokens", query={"next": encode(edited)})

    assert response.status in (200, 400), response.body
    if response.status == 200:
        assert {item["owner_id"] for item in response.json()["items"]} <= {"user-member"}
        assert cursors["globex_token"] not in response.body
    else:
        assert_field_error(response, "next")


# -- status computed from the clock -------------------------------------------------------


def test_expiry_is_computed_from_the_clock(member: Console, dynamodb: Any, clock: FakeClock) -> None:
    expiring = member.create_ok(name="short", expires_at="2030-03-18T00:00:00Z")
    lasting = member.create_ok(name="long")
    revoked = member.create_ok(name="revoked")
    assert member.request("DELETE", f"/tokens/{revoked['token_id']}").status == 200
    stored_before = table_item(dynamodb, expiring["token_id"])

    def by_status(status: str) -> set[str]:
        return set(listed_ids(member.request("GET", "/tokens", query={"status": status})))

    assert by_status("active") == {expiring["token_id"], lasting["token_id"]}
    assert by_status("expired") == set()
    assert by_status("revoked") == {revoked["token_id"]}

    expiry = stored_before["expires_at"]
    clock.now = float(expiry) - 0.5  # the last moment it is valid
    assert member.request("GET", f"/tokens/{expiring['token_id']}").json()["status"] == "active"
    assert expiring["token_id"] in by_status("active")

    clock.now = float(expiry)  # valid until, not including, expires_at
    assert member.request("GET", f"/tokens/{expiring['token_id']}").json()["status"] == "expired"
    assert by_status("expired") == {expiring["token_id"]}
    assert by_status("active") == {lasting["token_id"]}
    assert by_status("revoked") == {revoked["token_id"]}
    statuses = {item["token_id"]: item["status"] for item in member.request("GET", "/tokens").json()["items"]}
    assert statuses == {
        expiring["token_id"]: "expired",
        lasting["token_id"]: "active",
        revoked["token_id"]: "revoked",
    }
    assert table_item(dynamodb, expiring["token_id"]) == stored_before, "expiry must not write anything"


def test_revoked_token_stays_revoked_after_it_expires(member: Console, clock: FakeClock) -> None:
    token = member.create_ok(expires_at="2030-03-18T00:00:00Z")
    member.request("DELETE", f"/tokens/{token['token_id']}")

    clock.now += 10 * DAY

    assert member.request("GET", f"/tokens/{token['token_id']}").json()["status"] == "revoked"
    assert listed_ids(member.request("GET", "/tokens", query={"status": "expired"})) == []
    assert listed_ids(member.request("GET", "/tokens", query={"status": "revoked"})) == [token["token_id"]]


@pytest.mark.parametrize("status", ["all", "ACTIVE", "deleted", "revoked,active"])
def test_unknown_status_is_a_400(member: Console, status: str) -> None:
    assert_field_error(member.request("GET", "/tokens", query={"status": status}), "status")


# -- item shape ---------------------------------------------------------------------------


def test_items_carry_the_documented_fields_and_no_secret(admin: Console, member: Console, clock: FakeClock) -> None:
    created = [member.create_ok(name=f"token {index}", scopes=["reports:read", "import:builds"]) for index in range(3)]
    created.append(admin.create_ok(name="admin's"))
    member.request("DELETE", f"/tokens/{created[0]['token_id']}")
    secrets = [token["token"] for token in created]

    responses = [
        member.request("GET", "/tokens"),
        member.request("GET", "/tokens", query={"status": "revoked"}),
        member.request("GET", "/tokens", query={"status": "active"}),
        admin.request("GET", "/tokens", query={"all_users": "true"}),
        admin.request("GET", "/tokens", query={"owner_id": "user-member"}),
    ]

    for response in responses:
        assert response.status == 200, response.body
        assert response.headers.get("Cache-Control") == "no-store"
        assert not SECRET_PATTERN.search(response.body)
        assert "secret_hash" not in response.body
        assert not any(secret in response.body for secret in secrets)
        for item in response.json()["items"]:
            assert set(item) == DOCUMENTED_FIELDS
            assert item["display_hint"].startswith("lgk_")
            assert item["display_hint"].endswith(
                next(token["token"][-4:] for token in created if token["token_id"] == item["token_id"])
            )
    first = next(item for item in responses[0].json()["items"] if item["token_id"] == created[1]["token_id"])
    assert first["name"] == "token 1"
    assert sorted(first["scopes"]) == ["import:builds", "reports:read"]
    assert first["owner_id"] == first["created_by"] == "user-member"
    assert first["status"] == "active"
    assert first["created_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0))
    assert first["revoked_at"] is None


# -- read cost ----------------------------------------------------------------------------


def spy_on_queries(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Records every Query the service sends, with DynamoDB's answer."""
    client = wiring.get_service().repository.client
    real_query = client.query
    calls: list[dict[str, Any]] = []

    def query(**params: Any) -> Any:
        response = real_query(**params)
        calls.append({"params": params, "response": response})
        return response

    monkeypatch.setattr(client, "query", query)
    return calls


@pytest.mark.dynamodb_backends
@pytest.mark.parametrize("stored", [20, 200])
def test_a_page_reads_only_what_it_returns(
    member: Console, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, stored: int
) -> None:
    seed_tokens(dynamodb, MEMBER, stored)
    seed_tokens(dynamodb, OTHER_MEMBER, 50)  # the organisation's other tokens cost nothing either
    queries = spy_on_queries(monkeypatch)

    first = member.request("GET", "/tokens", query={"limit": "10"})
    second = member.request("GET", "/tokens", query={"limit": "10", "next": first.json()["next"]})

    assert len(listed_ids(first)) == len(listed_ids(second)) == 10
    assert len(queries) == 2, "one Query per page"
    for call in queries:
        assert call["params"]["Limit"] == 10
        assert call["response"]["Count"] <= 10
        assert call["response"]["ScannedCount"] <= 10
