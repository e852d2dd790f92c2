"""A model of tokens, roles and time, checked step by step against the real handlers.

Hypothesis drives random sequences of: creates (random user, scopes, expiry), revokes (by the
owner, an admin, a colleague, another organisation's admin, or the token itself through
DELETE /v1/token), clock jumps, role downgrades and authorizations (TOKEN events for random
routes of the route map, through the real authorizer Lambda handler). After each step the
answer must be the model's:

- a revoked or expired token is never allowed (401: the handler raises "Unauthorized");
- a valid token lacking a route's scopes gets a policy that does not allow the route (403);
- a valid token holding them is allowed, and its context names its own organisation and owner;
- another organisation's token is invisible to the console (404, nothing changes), and
  nothing in the authorizer's answer ever names another organisation.

Role downgrades: the service checks the caller's role when a token is created, not when it
is used. A token keeps the scopes it was created with after its owner is downgraded (even
scopes the new role may not grant), until it is revoked or expires; the downgraded user can
no longer create such tokens, nor, once no longer an admin, revoke other users' tokens.
The model encodes exactly that.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, multiple, rule, run_state_machine_as_test
from support import Console, FakeClock, authorize, call_self_service, self_service_event, token_event, with_other_secret

from devserver.gateway import Identity, policy_allows
from token_service import wiring
from token_service.domain.routes import ProtectedRoute, load_route_map
from token_service.domain.scopes import default_catalog

START = datetime(2030, 3, 15, 10, 30, tzinfo=UTC)
METHOD_ARN_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev"
CATALOG = default_catalog()
ALL_SCOPES = sorted(CATALOG.descriptions)
ROUTES = load_route_map()
EXERCISED = {"allowed": 0, "denied": 0, "refused": 0}  # authorizations, by outcome
ROLE_ORDER = ["admin", "member", "viewer"]  # each a downgrade of the one before


@dataclass
class ModelToken:
    token_id: str
    secret: str
    org: str
    owner: str
    scopes: frozenset[str]
    expires_at: int
    revoked: bool = False

    def usable(self, now: float, cache_seconds: int = 0) -> bool:
        """Refused once revoked, and `cache_seconds` before expiry: no cached allow outlives it."""
        return not self.revoked and now + cache_seconds < self.expires_at


def concrete_path(route: ProtectedRoute, segment: str) -> str:
    """A request path for the route ("v1/reports/r-1"), as it appears in a method ARN."""
    parts = ["x" + segment if part.startswith("{") else part for part in route.resource.strip("/").split("/")]
    return "/".join(parts)


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


class TokenWorld(RuleBasedStateMachine):
    """Two organisations; in the first an admin, a member and a viewer, in the second an admin."""

    authorizer: Any = None  # set by the test before the machine runs
    clock: FakeClock

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        run = uuid.uuid4().hex[:8]  # the table outlives an example: each gets its own organisations
        self.org = f"org-model-{run}"
        self.other_org = f"org-other-{run}"
        self.roles = {"ada": "admin", "max": "member", "vic": "viewer", "oz": "admin"}
        self.orgs = {"ada": self.org, "max": self.org, "vic": self.org, "oz": self.other_org}
        self.model: dict[str, ModelToken] = {}

    def console(self, user: str) -> Console:
        return Console(Identity(user_id=user, org_id=self.orgs[user], role=self.roles[user]))

    @property
    def now(self) -> float:
        return self.clock.now

    # -- rules -------------------------------------------------------------------------------

    @rule(
        target=tokens,
        user=st.sampled_from(["ada", "max", "vic", "oz"]),
        scopes=st.sets(st.sampled_from(ALL_SCOPES), min_size=1, max_size=4),
        lifetime_hours=st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 20)),
    )
    def create(self, user: str, scopes: set[str], lifetime_hours: int | None) -> Any:
        fields: dict[str, Any] = {}
        if lifetime_hours is not None:
            fields["expires_at"] = (datetime.fromtimestamp(self.now, UTC) + timedelta(hours=lifetime_hours)).isoformat()
        response = self.console(user).create("model", sorted(scopes), **fields)
        grantable = set(CATALOG.role(self.roles[user]).grantable_scopes)
        if not scopes <= grantable:
            assert response.status == 403, response.body
            assert response.json()["error"]["code"] == "scope_not_grantable"
            return multiple()
        assert response.status == 201, response.body
        body = response.json()
        expected_expiry = int(self.now) + (90 * 86_400 if lifetime_hours is None else lifetime_hours * 3600)
        assert epoch(body["expires_at"]) == expected_expiry
        token = ModelToken(
            token_id=body["token_id"],
            secret=body["token"],
            org=self.orgs[user],
            owner=user,
            scopes=frozenset(body["scopes"]),
            expires_at=expected_expiry,
        )
        assert token.scopes == scopes
        self.model[token.token_id] = token
        return token.token_id

    @rule(token_id=tokens, revoker=st.sampled_from(["owner", "ada", "max", "vic", "oz"]))
    def revoke(self, token_id: str, revoker: str) -> None:
        token = self.model[token_id]
        user = token.owner if revoker == "owner" else revoker
        response = self.console(user).request("DELETE", f"/tokens/{token_id}")
        may = self.orgs[user] == token.org and (
            user == token.owner or CATALOG.role(self.roles[user]).organisation_admin
        )
        if not may:
            # Another tenant's token, or a colleague's for a non-admin: exactly like no token.
            assert response.status == 404, response.body
            assert response.json()["error"]["code"] == "not_found"
            return
        assert response.status == 200, response.body
        assert response.json()["status"] == "revoked"
        token.revoked = True

    @rule(token_id=consumes(tokens))
    def revoke_itself(self, token_id: str) -> None:
        """DELETE /v1/token: only a token the authorizer allows gets there."""
        token = self.model[token_id]
        event = token_event(token.secret, "DELETE", "v1/token")
        if not token.usable(self.now, self.authorizer.authorizer.cache_seconds):
            with pytest.raises(Exception, match=r"^Unauthorized$"):
                authorize(self.authorizer, event)
            EXERCISED["refused"] += 1
            return
        context = authorize(self.authorizer, event)["context"]
        status, body = call_self_service(self_service_event("DELETE", context))
        assert status == 200 and body["status"] == "revoked", body
        token.revoked = True

    @rule(seconds=st.integers(min_value=1, max_value=6 * 86_400))
    def advance_clock(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule(token_id=tokens)
    def advance_to_expiry(self, token_id: str) -> None:
        """Right up to a token's expiry (less the authorizer's cache time), or right past it:
        the boundaries are where bugs live."""
        expires_at = self.model[token_id].expires_at
        boundaries = sorted({expires_at - self.authorizer.authorizer.cache_seconds, expires_at})
        for boundary in boundaries:
            if self.now < boundary - 1:
                self.clock.now = float(boundary - 1)
                return
            if self.now < boundary:
                self.clock.now = float(boundary)
                return

    @rule(user=st.sampled_from(["ada", "max", "oz"]))
    def downgrade(self, user: str) -> None:
        current = ROLE_ORDER.index(self.roles[user])
        self.roles[user] = ROLE_ORDER[min(current + 1, len(ROLE_ORDER) - 1)]

    @rule(token_id=tokens, route=st.sampled_from(ROUTES), segment=st.text("abc123-", min_size=1, max_size=8))
    def authorize_route(self, token_id: str, route: ProtectedRoute, segment: str) -> None:
        token = self.model[token_id]
        path = concrete_path(route, segment)
        event = token_event(token.secret, route.method, path)
        arn = f"{METHOD_ARN_PREFIX}/{route.method}/{path}"
        if not token.usable(self.now, self.authorizer.authorizer.cache_seconds):
            # Revoked or expired: 401, whatever the route, the owner's role or the token's scopes.
            EXERCISED["refused"] += 1
            with pytest.raises(Exception, match=r"^Unauthorized$"):
                authorize(self.authorizer, event)
            return
        result = authorize(self.authorizer, event)
        assert result["context"]["org_id"] == token.org
        assert result["context"]["owner_id"] == token.owner == result["principalId"]
        assert set(result["context"]["scopes"].split(" ")) == token.scopes
        if route.required_scopes <= token.scopes:
            assert policy_allows(result, arn), (route.resource, sorted(token.scopes))
            EXERCISED["allowed"] += 1
        else:
            assert not policy_allows(result, arn), (route.resource, sorted(token.scopes))  # API Gateway: 403
            EXERCISED["denied"] += 1
        # The policy is cached for every other route too (TOKEN): it allows none the token may not
        # use, and every parameter-free one it may.
        for other in ROUTES:
            other_arn = f"{METHOD_ARN_PREFIX}/{other.method}/{concrete_path(other, 'z')}"
            may = other.required_scopes <= token.scopes
            if policy_allows(result, other_arn):
                assert may, other.resource
            elif not other.has_parameters:
                assert not may, other.resource

    @rule(token_id=tokens, route=st.sampled_from(ROUTES))
    def impostor(self, token_id: str, route: ProtectedRoute) -> None:
        """The token's id with another secret (valid checksum): never allowed, whatever the token's state."""
        path = concrete_path(route, "i")
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(self.authorizer, token_event(with_other_secret(self.model[token_id].secret), route.method, path))

    @rule(token_id=tokens)
    def other_organisation_sees_nothing(self, token_id: str) -> None:
        token = self.model[token_id]
        outsider = "oz" if token.org == self.org else "ada"
        for method in ("GET", "DELETE"):
            response = self.console(outsider).request(method, f"/tokens/{token_id}")
            assert response.status == 404, response.body
        bulk = self.console(outsider).request("POST", "/tokens/revoke", body={"token_ids": [token_id]})
        assert bulk.status == 200 and bulk.json()["results"] == [{"token_id": token_id, "result": "not_found"}]
        listing = self.console(outsider).request("GET", "/tokens", query={"all_users": "true", "limit": "100"})
        if listing.status == 200:  # the outsider may have been downgraded: then 403
            assert token_id not in {item["token_id"] for item in listing.json()["items"]}

    @rule(token_id=tokens)
    def owner_sees_the_model(self, token_id: str) -> None:
        token = self.model[token_id]
        response = self.console(token.owner).request("GET", f"/tokens/{token_id}")
        assert response.status == 200, response.body
        expected = "revoked" if token.revoked else ("active" if self.now < token.expires_at else "expired")
        assert response.json()["status"] == expected
        assert set(response.json()["scopes"]) == token.scopes


def test_the_service_behaves_like_the_model(authorizer_app: Any, fake_apigateway: Any, dynamodb: Any) -> None:
    EXERCISED.update(dict.fromkeys(EXERCISED, 0))
    clock = FakeClock(START)
    wiring.get_service().clock = clock
    authorizer_app.authorizer.clock = clock
    TokenWorld.authorizer = authorizer_app
    TokenWorld.clock = clock
    run_state_machine_as_test(
        TokenWorld,
        settings=settings(
            max_examples=100,
            stateful_step_count=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The run reached every kind of decision (derandomized: the same sequences every time).
    assert min(EXERCISED.values()) >= 10, EXERCISED


def test_a_downgraded_users_tokens_keep_their_scopes(authorizer_app: Any, fake_apigateway: Any, dynamodb: Any) -> None:
    """What the service does today, spelled out (the model above encodes the same): the role is
    checked when a token is created, not when it is used."""
    admin = Console(Identity(user_id="ada", org_id="org-acme", role="admin"))
    colleague = Console(Identity(user_id="max", org_id="org-acme", role="member"))
    teams = admin.create_ok("teams upload", ["import:teams"])
    colleagues = colleague.create_ok("colleague's")["token_id"]

    downgraded = Console(Identity(user_id="ada", org_id="org-acme", role="viewer"))
    # The token minted as an admin still carries, and is allowed, an admin-only scope ...
    result = authorize(authorizer_app, token_event(teams["token"], "POST", "v1/import/teams"))
    assert policy_allows(result, f"{METHOD_ARN_PREFIX}/POST/v1/import/teams")
    assert downgraded.request("GET", f"/tokens/{teams['token_id']}").json()["scopes"] == ["import:teams"]
    # ... while the downgraded user can no longer mint such a token, nor act as an admin.
    refused = downgraded.create("again", ["import:teams"])
    assert refused.status == 403 and refused.json()["error"]["code"] == "scope_not_grantable"
    assert downgraded.request("DELETE", f"/tokens/{colleagues}").status == 404
    assert downgraded.request("GET", "/tokens", query={"all_users": "true"}).status == 403
    # Revoking the token is what removes the access.
    assert downgraded.request("DELETE", f"/tokens/{teams['token_id']}").status == 200
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer_app, token_event(teams["token"], "POST", "v1/import/teams"))
