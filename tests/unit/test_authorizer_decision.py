"""The authorizer's decision, reason by reason and boundary by boundary, on an in-memory store.

The expiry boundary is exact: a token whose `expires_at` is now is refused, one second before
it is allowed (the handler tier's stateful test used to be the only one to notice `<=` turned
into `<`). Fast: no AWS, no moto."""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import Any

import pytest

from token_service.domain import token_format
from token_service.domain.authorizer import (
    LAST_USED_INTERVAL_SECONDS,
    UNAUTHENTICATED,
    Decision,
    Reason,
    TokenAuthorizer,
    bearer_token,
)
from token_service.domain.errors import StoreUnavailable
from token_service.domain.records import TokenGrant
from token_service.domain.routes import parse_route_map
from token_service.domain.token_format import HASH_VERSION, checksum, generate_token, hash_token

NOW = 1_900_000_000
DAY = 86_400
ROUTES = parse_route_map(
    {
        "routes": {
            "GET /v1/reports": ["reports:read"],
            "GET /v1/reports/{report_id}": ["reports:read"],
            "DELETE /v1/reports/{report_id}": ["reports:write"],
        }
    }
)
READ_ROUTES = tuple(route for route in ROUTES if route.required_scopes == {"reports:read"})


class Store:
    """The authorizer's store: grants by id, and the last-use writes it was asked for."""

    def __init__(self) -> None:
        self.grants: dict[str, TokenGrant] = {}
        self.uses: list[tuple[str, int, str | None, int]] = []
        self.reads: list[str] = []
        self.fail_reads = False
        self.fail_writes = False

    def get_grant(self, token_id: str) -> TokenGrant | None:
        self.reads.append(token_id)
        if self.fail_reads:
            raise StoreUnavailable()
        return self.grants.get(token_id)

    def record_use(self, token_id: str, used_at: int, source_ip: str | None, not_since: int) -> None:
        if self.fail_writes:
            raise StoreUnavailable()
        self.uses.append((token_id, used_at, source_ip, not_since))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def moment() -> Clock:
    return Clock(NOW)


def authorizer_for(store: Store, moment: Clock, cache_seconds: int = 0) -> TokenAuthorizer:
    return TokenAuthorizer(store, ROUTES, "lgk", clock=moment, cache_seconds=cache_seconds)


def issue(store: Store, **fields: Any) -> tuple[str, TokenGrant]:
    parsed = generate_token("lgk")
    grant = TokenGrant(
        token_id=parsed.token_id,
        org_id="org-acme",
        owner_id="user-1",
        scopes=("reports:read",),
        expires_at=NOW + 90 * DAY,
        secret_hash=hash_token(parsed.token),
        hash_version=HASH_VERSION,
        created_at=NOW - DAY,
        last_used_at=NOW - DAY,
    )
    grant = replace(grant, **fields)
    store.grants[grant.token_id] = grant
    return parsed.token, grant


def decide(authorizer: TokenAuthorizer, token: str, method: str = "GET", path: str = "/v1/reports") -> Decision:
    return authorizer.decide(f"Bearer {token}", method, path, "203.0.113.9")


def assert_refused(decision: Decision, reason: Reason, grant: TokenGrant) -> None:
    assert decision.reason is reason
    assert not decision.allowed
    assert decision.token_id == grant.token_id
    assert decision.record == grant
    assert decision.allowed_routes == ()
    assert decision.route is None


# -- the header ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Bearer abc", "abc", id="bearer"),
        pytest.param("bearer abc", "abc", id="lowercase-scheme"),
        pytest.param("BEARER abc", "abc", id="uppercase-scheme"),
        pytest.param("  Bearer abc  ", "abc", id="surrounding-spaces"),
        pytest.param("Bearer    abc", "abc", id="several-spaces-after-the-scheme"),
        pytest.param("Bearer abc def", None, id="two-tokens"),
        pytest.param("Bearer ", None, id="no-token"),
        pytest.param("Bearer", None, id="scheme-only"),
        pytest.param("Basic abc", None, id="basic"),
        pytest.param("Bearerabc", None, id="no-space"),
        pytest.param("Token abc", None, id="other-scheme"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="none"),
    ],
)
def test_the_bearer_token_of_a_header(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_a_header_of_up_to_512_characters_is_read_and_a_longer_one_refused() -> None:
    token = generate_token("lgk").token
    padding = 512 - len("Bearer") - len(token)
    longest = "Bearer" + " " * padding + token
    assert len(longest) == 512
    assert bearer_token(longest) == token
    assert bearer_token(longest.replace("Bearer", "Bearer ")) is None  # 513 characters


def test_missing_or_malformed_credentials_are_refused_without_a_read(store: Store, moment: Clock) -> None:
    authorizer = authorizer_for(store, moment)
    token, _ = issue(store)
    for header in (None, "", "Basic dXNlcjpwYXNz", f"Bearer {token} extra"):
        decision = authorizer.decide(header, "GET", "/v1/reports")
        assert decision.reason is Reason.MISSING
        assert decision.token_id is None
    for bad in (token[:-1] + ("A" if token[-1] != "A" else "B"), token.replace("lgk_", "abc_"), "lgk_short"):
        decision = decide(authorizer, bad)
        assert decision.reason is Reason.MALFORMED
        assert decision.token_id is None
    assert store.reads == []


# -- the token's state --------------------------------------------------------------------


def test_an_unknown_token_is_refused_after_one_read(store: Store, moment: Clock) -> None:
    parsed = generate_token("lgk")
    decision = decide(authorizer_for(store, moment), parsed.token)
    assert decision.reason is Reason.UNKNOWN
    assert decision.token_id == parsed.token_id
    assert decision.record is None
    assert store.reads == [parsed.token_id]


def test_an_unavailable_store_fails_closed(store: Store, moment: Clock) -> None:
    token, grant = issue(store)
    store.fail_reads = True
    decision = decide(authorizer_for(store, moment), token)
    assert decision.reason is Reason.UNAVAILABLE
    assert decision.token_id == grant.token_id
    assert not decision.allowed


def test_a_token_with_the_right_id_but_another_secret_is_refused(store: Store, moment: Clock) -> None:
    _, grant = issue(store)
    unchecked = f"lgk_{grant.token_id}{'A' * 32}"
    forged = unchecked + checksum(unchecked)
    decision = decide(authorizer_for(store, moment), forged)
    assert decision.reason is Reason.WRONG_SECRET
    assert decision.token_id == grant.token_id
    assert decision.record is None
    assert store.uses == []


def test_a_hash_of_another_version_is_refused_even_when_it_matches(store: Store, moment: Clock) -> None:
    token, grant = issue(store, hash_version=HASH_VERSION + 1)
    decision = decide(authorizer_for(store, moment), token)
    assert decision.reason is Reason.WRONG_SECRET
    assert decision.token_id == grant.token_id


def test_the_decision_compares_hashes_through_hmac_compare_digest(
    store: Store, moment: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, grant = issue(store)
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(token_format.hmac, "compare_digest", spy)
    assert decide(authorizer_for(store, moment), token).allowed
    assert (grant.secret_hash, grant.secret_hash) in calls


def test_a_revoked_token_is_refused_before_anything_else(store: Store, moment: Clock) -> None:
    token, grant = issue(store, revoked_at=NOW - 5, expires_at=NOW - 1, disabled_at=NOW - 9)
    assert_refused(decide(authorizer_for(store, moment), token), Reason.REVOKED, grant)
    assert store.uses == []


def test_expiry_is_exact_to_the_second(store: Store, moment: Clock) -> None:
    token, grant = issue(store, expires_at=NOW)
    authorizer = authorizer_for(store, moment)
    assert_refused(decide(authorizer, token), Reason.EXPIRED, grant)  # expires_at == now: expired
    moment.now = NOW - 1
    assert decide(authorizer, token).allowed  # one second before: still valid
    moment.now = NOW - 0.001
    assert decide(authorizer, token).allowed
    moment.now = NOW + 1
    assert_refused(decide(authorizer, token), Reason.EXPIRED, grant)


def test_an_expired_token_is_refused_even_if_disabled_too(store: Store, moment: Clock) -> None:
    token, grant = issue(store, expires_at=NOW - DAY, disabled_at=NOW - 2 * DAY)
    assert_refused(decide(authorizer_for(store, moment), token), Reason.EXPIRED, grant)


def test_no_allow_is_given_that_a_cache_would_keep_past_the_expiry(store: Store, moment: Clock) -> None:
    authorizer = authorizer_for(store, moment, cache_seconds=300)
    token, grant = issue(store, expires_at=NOW + 300)
    assert_refused(decide(authorizer, token), Reason.EXPIRES_WITHIN_CACHE, grant)  # exactly at the edge
    token, grant = issue(store, expires_at=NOW + 100)
    assert_refused(decide(authorizer, token), Reason.EXPIRES_WITHIN_CACHE, grant)
    token, grant = issue(store, expires_at=NOW)
    assert_refused(decide(authorizer, token), Reason.EXPIRED, grant)  # expired wins over the cache window
    token, _ = issue(store, expires_at=NOW + 301)
    assert decide(authorizer, token).allowed


def test_a_disabled_token_is_refused(store: Store, moment: Clock) -> None:
    token, grant = issue(store, disabled_at=NOW - 10)
    assert_refused(decide(authorizer_for(store, moment), token), Reason.DISABLED, grant)
    assert store.uses == []


def test_the_unused_token_policy_stops_a_token_at_its_exact_deadline(store: Store, moment: Clock) -> None:
    authorizer = authorizer_for(store, moment)
    # Last used 30 days ago to the second under a 30-day policy: this request is too late.
    token, grant = issue(store, unused_after_days=30, last_used_at=NOW - 30 * DAY)
    assert_refused(decide(authorizer, token), Reason.UNUSED, grant)
    token, _ = issue(store, unused_after_days=30, last_used_at=NOW - 30 * DAY + 1)
    assert decide(authorizer, token).allowed
    # Never used: counted from creation.
    token, grant = issue(store, unused_after_days=30, last_used_at=None, created_at=NOW - 30 * DAY)
    assert_refused(decide(authorizer, token), Reason.UNUSED, grant)
    # No policy: never stopped for disuse.
    token, _ = issue(store, unused_after_days=None, last_used_at=NOW - 999 * DAY)
    assert decide(authorizer, token).allowed
    assert Reason.UNUSED in UNAUTHENTICATED


# -- scopes and routes --------------------------------------------------------------------


def test_an_allowed_decision_carries_the_token_its_routes_and_the_route(store: Store, moment: Clock) -> None:
    token, grant = issue(store)
    decision = decide(authorizer_for(store, moment), token, "GET", "/v1/reports/42")
    assert decision.reason is Reason.ALLOWED
    assert decision.allowed
    assert decision.token_id == grant.token_id
    assert decision.record == grant
    assert decision.allowed_routes == READ_ROUTES
    assert decision.route is not None
    assert (decision.route.method, decision.route.resource) == ("GET", "/v1/reports/{report_id}")
    assert decision.last_use_not_recorded is False


def test_a_missing_scope_is_refused_with_the_routes_the_token_has(store: Store, moment: Clock) -> None:
    token, grant = issue(store)
    decision = decide(authorizer_for(store, moment), token, "DELETE", "/v1/reports/42")
    assert decision.reason is Reason.INSUFFICIENT_SCOPE
    assert not decision.allowed
    assert decision.token_id == grant.token_id
    assert decision.record == grant
    assert decision.allowed_routes == READ_ROUTES
    assert decision.route is not None
    assert (decision.route.method, decision.route.resource) == ("DELETE", "/v1/reports/{report_id}")
    assert Reason.INSUFFICIENT_SCOPE not in UNAUTHENTICATED


def test_a_route_outside_the_map_is_refused(store: Store, moment: Clock) -> None:
    token, grant = issue(store, scopes=("reports:read", "reports:write"))
    for method, path in (("POST", "/v1/reports"), ("GET", "/v1/other"), ("GET", "/v1/reports/42/raw")):
        decision = decide(authorizer_for(store, moment), token, method, path)
        assert decision.reason is Reason.UNMAPPED_ROUTE
        assert decision.route is None
        assert decision.record == grant
        assert decision.allowed_routes == ROUTES


def test_a_token_without_scopes_reaches_no_route(store: Store, moment: Clock) -> None:
    token, _ = issue(store, scopes=())
    decision = decide(authorizer_for(store, moment), token)
    assert decision.reason is Reason.INSUFFICIENT_SCOPE
    assert decision.allowed_routes == ()


# -- the last use -------------------------------------------------------------------------


def test_a_use_is_recorded_at_most_once_per_interval(store: Store, moment: Clock) -> None:
    moment.now = NOW + 0.75
    authorizer = authorizer_for(store, moment)
    token, grant = issue(store, last_used_at=NOW - LAST_USED_INTERVAL_SECONDS)
    assert decide(authorizer, token).allowed
    # Exactly one interval since the last recorded use: record this one, with the
    # second of the request and the bound that stops a concurrent request from recording too.
    assert store.uses == [(grant.token_id, NOW, "203.0.113.9", NOW - LAST_USED_INTERVAL_SECONDS)]
    store.uses.clear()
    token, _ = issue(store, last_used_at=NOW - LAST_USED_INTERVAL_SECONDS + 1)
    assert decide(authorizer, token).allowed
    assert store.uses == []  # used less than an interval ago: no write
    token, grant = issue(store, last_used_at=None)
    assert authorizer.decide(f"Bearer {token}", "GET", "/v1/reports").allowed
    assert store.uses == [(grant.token_id, NOW, None, NOW - LAST_USED_INTERVAL_SECONDS)]


def test_a_use_exactly_one_interval_after_the_last_is_recorded(store: Store, moment: Clock) -> None:
    token, grant = issue(store, last_used_at=NOW - LAST_USED_INTERVAL_SECONDS)
    assert decide(authorizer_for(store, moment), token).allowed
    assert [use[0] for use in store.uses] == [grant.token_id]


def test_a_failed_last_use_write_does_not_change_the_decision(store: Store, moment: Clock) -> None:
    token, _ = issue(store, last_used_at=None)
    store.fail_writes = True
    decision = decide(authorizer_for(store, moment), token)
    assert decision.allowed
    assert decision.last_use_not_recorded is True
    token, _ = issue(store, last_used_at=NOW - 5)  # fresh: no write attempted, nothing lost
    decision = decide(authorizer_for(store, moment), token)
    assert decision.allowed
    assert decision.last_use_not_recorded is False


def test_a_refused_token_records_no_use(store: Store, moment: Clock) -> None:
    authorizer = authorizer_for(store, moment)
    for fields in ({"revoked_at": NOW - 1}, {"expires_at": NOW}, {"disabled_at": NOW - 1}):
        token, _ = issue(store, last_used_at=None, **fields)
        assert not decide(authorizer, token).allowed
    assert store.uses == []
