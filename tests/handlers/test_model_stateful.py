"""A model of tokens, roles, policies and time, checked step by step against the real handlers.

Hypothesis drives random sequences of: creates (random user, scopes, expiry), revokes (by the
owner, an admin, a colleague, another organisation's admin, or the token itself through
DELETE /v1/token), rotations (by the same people, or by the token itself through
POST /v1/token/rotate; every grace period, PT0S to P30D), disables and enables, policy changes
(the active-token cap; the unused-token policy on, 30 or 45 days, or off), clock jumps (seconds
to weeks, or right up to or onto a token's expiry, the authorizer's cache time before it, or its
unused-token deadline), role downgrades, runs of the scheduled cleanup, and authorizations
(TOKEN events for random routes of the route map, through the real authorizer Lambda handler,
which records each token's last use). After each step the answer must be the model's:

- a revoked, expired, disabled or unused-expired token, or an old token past its grace period,
  is never allowed (401: the handler raises "Unauthorized"), for the model's reason;
- an allowed token is one the model says is usable: a valid token lacking a route's scopes
  gets a policy that does not allow the route (403); one holding them is allowed, and its
  context names its own organisation and owner; the use is recorded (at most once per interval);
- a rotation mints a token with the old one's name, scopes and owner, links the two both ways,
  and ends the old one at the earlier of its own expiry and the end of the grace period (both
  work until then, outside the cache time); rotating it again is 409 naming its successor, and
  only an active token can be rotated; the active-token cap counts a token in its grace window;
- a disabled token is refused from the moment PATCH returns, and works again once enabled;
- the cleanup revokes exactly the live tokens the unused-token policy calls unused (disabled ones
  included; not a second early), revoked_by "policy:unused", and announces each;
- another organisation's token is invisible to the console (404, nothing changes), and
  nothing in the authorizer's answer ever names another organisation.

Role downgrades reach tokens (membership changes): when a user's role is lowered, either an
admin reports it (PUT /members/{user_id}) or the user pool's event arrives (the membership
Lambda's call), and the user's live tokens are fitted to the new role: scopes it may not grant
are removed, and a token left with none is revoked by "membership:role". The downgraded user can
no longer create such tokens, nor, once no longer an admin, act on other users' tokens.

The unused-token policy is the organisation's: a token whose last use (its creation if never
used) is at least that many days ago is unused-expired, whatever copy of the policy its item
carries. The console's status does not show it ("active" until the cleanup revokes it), so the
console may still rotate, disable or enable such a token; the model encodes that too.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import (
    TABLE_NAME,
    Cleanup,
    Console,
    FakeClock,
    authorize,
    call_self_service,
    load_event,
    self_service_event,
    token_event,
    with_other_secret,
)

from devserver.gateway import Identity, LambdaContext, load_handler_module, policy_allows
from devserver.template import ROOT, table_definition
from token_service import wiring
from token_service.domain.authorizer import LAST_USED_INTERVAL_SECONDS, Decision, Reason
from token_service.domain.cleanup import UNUSED_POLICY_ACTOR
from token_service.domain.routes import ProtectedRoute, load_route_map
from token_service.domain.scopes import default_catalog
from token_service.http.models import GRACE_PERIODS

pytestmark = [pytest.mark.dynamodb_backends]  # the model on moto, and on dynalite

START = datetime(2030, 3, 15, 10, 30, tzinfo=UTC)
DAY = 86_400
METHOD_ARN_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev"
CATALOG = default_catalog()
ALL_SCOPES = sorted(CATALOG.descriptions)
ROUTES = load_route_map()
EXERCISED = {"allowed": 0, "denied": 0, "refused": 0}  # authorizations, by outcome
COVERED: Counter[str] = Counter()  # what the run reached besides (refusal reasons, rotations, ...)
ROLE_ORDER = ["admin", "member", "viewer"]  # each a downgrade of the one before
USERS = ["ada", "max", "vic", "oz"]
LIVE_PICK = st.one_of(st.none(), st.integers(min_value=0, max_value=15))  # see TokenWorld.pick
POLICY = {"max_lifetime_days": 366, "default_lifetime_days": 90}  # what set_policy leaves as it is


@dataclass
class ModelToken:
    token_id: str
    secret: str
    org: str
    owner: str
    scopes: frozenset[str]
    expires_at: int
    created_at: int
    created_by: str
    revoked_at: int | None = None
    revoked_by: str | None = None
    disabled_by: str | None = None  # set while disabled
    last_used_at: int | None = None
    rotated_from: str | None = None
    rotated_to: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def disabled(self) -> bool:
        return self.disabled_by is not None

    def live(self, now: float) -> bool:
        """Neither revoked nor expired: it holds a place under the cap (disabled or not)."""
        return not self.revoked and now < self.expires_at

    def unused_since(self) -> int:
        return self.last_used_at if self.last_used_at is not None else self.created_at

    def unused_expired(self, now: float, days: int | None) -> bool:
        return days is not None and self.unused_since() + days * DAY <= now

    def refusal(self, now: float, cache_seconds: int, unused_days: int | None) -> Reason | None:
        """Why the authorizer refuses it, in the authorizer's order; None: it is usable. Refused
        `cache_seconds` before expiry: no cached allow outlives it."""
        if self.revoked:
            return Reason.REVOKED
        if self.expires_at <= now:
            return Reason.EXPIRED
        if self.expires_at <= now + cache_seconds:
            return Reason.EXPIRES_WITHIN_CACHE
        if self.disabled:
            return Reason.DISABLED
        if self.unused_expired(now, unused_days):
            return Reason.UNUSED
        return None

    def status(self, now: float) -> str:
        if self.revoked:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "disabled" if self.disabled else "active"


class NothingDue:
    """The cleanup's lifecycle store, with nothing due: the model runs the cleanup for the
    unused-token policy. (Its expiry notices, marking and purges are tested on their own; here,
    catching up the day buckets of months of model time would cost two requests a day.)"""

    def get_watermark(self) -> date:
        return date.max  # every day is handled

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"nothing is due: the cleanup should not call {name}")


class RecordingAuthorizer:
    """Stands in for the authorizer Lambda's TokenAuthorizer and remembers its last decision,
    so a refusal (always the same 401) can be checked for its reason."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: Decision | None = None

    @property
    def cache_seconds(self) -> int:
        return int(self.inner.cache_seconds)

    def decide(self, *args: Any, **kwargs: Any) -> Decision:
        self.last = self.inner.decide(*args, **kwargs)
        return self.last


def concrete_path(route: ProtectedRoute, segment: str) -> str:
    """A request path for the route ("v1/reports/r-1"), as it appears in a method ARN."""
    parts = ["x" + segment if part.startswith("{") else part for part in route.resource.strip("/").split("/")]
    return "/".join(parts)


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def call_self_rotation(authorizer_context: dict[str, Any], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /v1/token/rotate as API Gateway calls it once the authorizer allowed the token."""
    event = load_event("token_self_rotate.json")
    event["requestContext"]["authorizer"] = authorizer_context
    event["body"] = json.dumps(body)
    module = load_handler_module(ROOT / "functions" / "token_self", "app.lambda_handler")
    result = module.lambda_handler(event, LambdaContext(function_name="TokenSelfFunction"))
    return result["statusCode"], json.loads(result["body"])


def empty_table() -> None:
    """Each example starts on an empty table: examples stay independent (no cleanup run reads an
    earlier example's tokens), and moto's queries, which read the whole table, stay cheap."""
    client = wiring.get_service().repository.client
    client.delete_table(TableName=TABLE_NAME)
    client.get_waiter("table_not_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})
    client.create_table(TableName=TABLE_NAME, **table_definition())
    client.get_waiter("table_exists").wait(TableName=TABLE_NAME, WaiterConfig={"Delay": 0.1})


class TokenWorld(RuleBasedStateMachine):
    """Two organisations; in the first an admin, a member and a viewer, in the second an admin."""

    authorizer: Any = None  # the authorizer Lambda module; set by the test before the machine runs
    decisions: RecordingAuthorizer
    clock: FakeClock

    tokens = Bundle("tokens")

    def __init__(self) -> None:
        super().__init__()
        empty_table()
        run = uuid.uuid4().hex[:8]
        self.org = f"org-model-{run}"
        self.other_org = f"org-other-{run}"
        self.roles = {"ada": "admin", "max": "member", "vic": "viewer", "oz": "admin"}
        self.orgs = {"ada": self.org, "max": self.org, "vic": self.org, "oz": self.other_org}
        self.cap = {self.org: 50, self.other_org: 50}  # max_active_tokens_per_user
        self.unused_days: dict[str, int | None] = {self.org: None, self.other_org: None}
        self.model: dict[str, ModelToken] = {}
        self.cleanup = Cleanup(wiring.get_service())

    def console(self, user: str) -> Console:
        return Console(Identity(user_id=user, org_id=self.orgs[user], role=self.roles[user]))

    @property
    def now(self) -> float:
        return self.clock.now

    def may_manage(self, user: str, token: ModelToken) -> bool:
        """Who may revoke, rotate, disable or enable a token: its owner, or an admin of its organisation."""
        return self.orgs[user] == token.org and (
            user == token.owner or CATALOG.role(self.roles[user]).organisation_admin
        )

    def pick(self, token_id: str, live: int | None, unused_deadline: bool = False) -> ModelToken:
        """The bundle's token or, when `live` is given, one of the tokens still live (if any; with an
        unused-token deadline before its expiry if asked): the bundle holds every token made, most
        of them soon revoked or expired, and the rules that change a token must reach live ones too."""
        if live is not None:
            candidates = [
                token
                for token in self.model.values()
                if token.live(self.now) and (not unused_deadline or self.unused_deadline(token) is not None)
            ]
            if candidates:
                return candidates[live % len(candidates)]
        return self.model[token_id]

    def unused_deadline(self, token: ModelToken) -> int | None:
        """When the unused-token policy stops the token, if it does before the token expires."""
        days = self.unused_days[token.org]
        if days is None:
            return None
        deadline = token.unused_since() + days * DAY
        return deadline if deadline < token.expires_at - self.decisions.cache_seconds else None

    def policy_on(self) -> bool:
        return any(days is not None for days in self.unused_days.values())

    def refusal(self, token: ModelToken) -> Reason | None:
        return token.refusal(self.now, self.decisions.cache_seconds, self.unused_days[token.org])

    def live_tokens(self, org: str, owner: str) -> list[ModelToken]:
        """The owner's tokens that hold a place under the cap: neither revoked nor expired (disabled,
        unused-expired and in their grace window included)."""
        return [
            token for token in self.model.values() if (token.org, token.owner) == (org, owner) and token.live(self.now)
        ]

    def cap_reached(self, org: str, holding: list[ModelToken]) -> bool:
        reached = len(holding) >= self.cap[org]
        if reached and len([token for token in holding if token.rotated_to is None]) < self.cap[org]:
            COVERED["cap:counts the grace window"] += 1  # it binds because of a token in its grace window
        return reached

    def check_decision(self, token: ModelToken, method: str, path: str) -> Any:
        """The authorizer's answer for the token on a route: refused for the model's reason, or
        an answer (returned) when the model says the token is usable, whose use is recorded."""
        event = token_event(token.secret, method, path)
        refusal = self.refusal(token)
        if refusal is not None:
            with pytest.raises(Exception, match=r"^Unauthorized$"):
                authorize(self.authorizer, event)
            assert self.decisions.last is not None and self.decisions.last.reason is refusal, (
                self.decisions.last,
                refusal,
            )
            EXERCISED["refused"] += 1
            COVERED[f"refused:{refusal.value}"] += 1
            if token.rotated_to is not None and refusal in (Reason.EXPIRED, Reason.EXPIRES_WITHIN_CACHE):
                COVERED["refused:past grace"] += 1
            return None
        result = authorize(self.authorizer, event)
        assert self.decisions.last is not None and self.decisions.last.token_id == token.token_id
        EXERCISED["allowed" if policy_allows(result, f"{METHOD_ARN_PREFIX}/{method}/{path}") else "denied"] += 1
        if token.rotated_to is not None:
            COVERED["usable:in grace"] += 1
        # The authorizer records the use, at most once per interval (a conditional write).
        if token.last_used_at is None or token.last_used_at < int(self.now) - LAST_USED_INTERVAL_SECONDS:
            token.last_used_at = int(self.now)
        return result

    def expect_not_found(self, response: Any) -> None:
        assert response.status == 404, response.body
        assert response.json()["error"]["code"] == "not_found"

    def expect_conflict(self, response: Any, code: str, named: str) -> None:
        assert response.status == 409, response.body
        error = response.json()["error"]
        assert error["code"] == code and named in error["message"], error

    # -- rules -------------------------------------------------------------------------------

    @initialize(
        target=tokens,
        user=st.sampled_from(["ada", "max", "oz"]),
        scopes=st.sets(st.sampled_from(ALL_SCOPES), min_size=1, max_size=4),
        lifetime_hours=st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 20)),
    )
    def first_token(self, user: str, scopes: set[str], lifetime_hours: int | None) -> Any:
        """Every example starts with a token (an admin's or a member's), so it has one to act on."""
        return self.create(user, scopes, lifetime_hours)

    @initialize()
    def first_policy(self) -> None:
        """Examples start with a cap of 2 tokens a user in the first organisation (the cap binds,
        and a token in its grace window counts) and its unused-token policy on, 30 days (set_policy
        turns it off, or on in the other organisation)."""
        self.set_policy("ada", 2, 30)

    @rule(
        target=tokens,
        user=st.sampled_from(USERS),
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
        org = self.orgs[user]
        if self.cap_reached(org, self.live_tokens(org, user)):
            self.expect_conflict(response, "active_token_limit_reached", "maximum")
            COVERED["cap:create refused"] += 1
            return multiple()
        assert response.status == 201, response.body
        body = response.json()
        expected_expiry = int(self.now) + (90 * DAY if lifetime_hours is None else lifetime_hours * 3600)
        assert epoch(body["expires_at"]) == expected_expiry
        token = ModelToken(
            token_id=body["token_id"],
            secret=body["token"],
            org=org,
            owner=user,
            scopes=frozenset(body["scopes"]),
            expires_at=expected_expiry,
            created_at=int(self.now),
            created_by=user,
        )
        assert token.scopes == scopes
        self.model[token.token_id] = token
        return token.token_id

    @rule(token_id=tokens, revoker=st.sampled_from(["owner", *USERS]))
    def revoke(self, token_id: str, revoker: str) -> None:
        token = self.model[token_id]
        user = token.owner if revoker == "owner" else revoker
        response = self.console(user).request("DELETE", f"/tokens/{token_id}")
        if not self.may_manage(user, token):
            # Another tenant's token, or a colleague's for a non-admin: exactly like no token.
            self.expect_not_found(response)
            return
        assert response.status == 200, response.body
        assert response.json()["status"] == "revoked"
        if not token.revoked:
            token.revoked_at, token.revoked_by = int(self.now), user
        assert response.json()["revoked_by"] == token.revoked_by

    @rule(token_id=consumes(tokens))
    def revoke_itself(self, token_id: str) -> None:
        """DELETE /v1/token: only a token the authorizer allows gets there."""
        token = self.model[token_id]
        result = self.check_decision(token, "DELETE", "v1/token")
        if result is None:
            return
        status, body = call_self_service(self_service_event("DELETE", result["context"]))
        assert status == 200 and body["status"] == "revoked", body
        token.revoked_at, token.revoked_by = int(self.now), f"token:{token_id}"

    @rule(
        target=tokens,
        token_id=tokens,
        live=LIVE_PICK,
        rotator=st.sampled_from(["owner", "itself", *USERS]),
        grace=st.sampled_from(sorted(GRACE_PERIODS)),
        lifetime_hours=st.one_of(st.none(), st.integers(min_value=1, max_value=24 * 20)),
    )
    def rotate(self, token_id: str, live: int | None, rotator: str, grace: str, lifetime_hours: int | None) -> Any:
        """POST /tokens/{id}/rotate by a console user, or POST /v1/token/rotate by the token itself."""
        old = self.pick(token_id, live)
        token_id = old.token_id
        body: dict[str, Any] = {"grace": grace}
        if lifetime_hours is not None:
            body["expires_at"] = (datetime.fromtimestamp(self.now, UTC) + timedelta(hours=lifetime_hours)).isoformat()
        if rotator == "itself":
            # Only a token the authorizer allows gets there: active, so the only refusals left
            # are "already rotated" (in its grace period) and the cap.
            allowed = self.check_decision(old, "POST", "v1/token/rotate")
            if allowed is None:
                return multiple()
            status, answer = call_self_rotation(allowed["context"], body)
            actor = f"token:{token_id}"
        else:
            user = old.owner if rotator == "owner" else rotator
            response = self.console(user).request("POST", f"/tokens/{token_id}/rotate", body=body)
            if not self.may_manage(user, old):
                self.expect_not_found(response)
                return multiple()
            status, answer = response.status, response.json()
            actor = user
        if old.rotated_to is not None:  # checked first: a rotated token names its successor whatever its state
            assert status == 409 and answer["error"]["code"] == "already_rotated", answer
            assert old.rotated_to in answer["error"]["message"]
            COVERED["rotate:already rotated"] += 1
            return multiple()
        if old.status(self.now) != "active":
            assert status == 409 and answer["error"]["code"] == "token_not_active", answer
            assert old.status(self.now) in answer["error"]["message"]
            COVERED["rotate:not active"] += 1
            return multiple()
        shortened = min(old.expires_at, int(self.now) + GRACE_PERIODS[grace])
        # The cap counts the old token in its grace window (not when the grace period is none).
        holding = [token for token in self.live_tokens(old.org, old.owner) if token is not old]
        if self.cap_reached(old.org, holding + ([replace(old, rotated_to="new")] if shortened > self.now else [])):
            assert status == 409 and answer["error"]["code"] == "active_token_limit_reached", answer
            COVERED["cap:rotate refused"] += 1
            return multiple()
        assert status == 201, answer
        if rotator != "owner" and actor != old.owner:
            COVERED["rotate:by another"] += 1
        if old.unused_expired(self.now, self.unused_days[old.org]):
            COVERED["rotate:unused-expired token"] += 1  # the console may: its status is active
        expected_expiry = int(self.now) + (90 * DAY if lifetime_hours is None else lifetime_hours * 3600)
        successor = answer["token_id"]
        assert successor not in self.model and answer["token"] != old.secret
        assert (answer["name"], answer["owner_id"], set(answer["scopes"])) == ("model", old.owner, old.scopes)
        assert answer["created_by"] == actor and answer["status"] == "active"
        assert epoch(answer["expires_at"]) == expected_expiry
        # Linked both ways, the old one's life shortened (never lengthened).
        assert answer["rotated_from"] == token_id and answer["rotated_to"] is None
        replaced = answer["replaced"]
        assert replaced["token_id"] == token_id and replaced["rotated_to"] == successor
        assert epoch(replaced["expires_at"]) == shortened
        if shortened <= self.now:
            COVERED["rotated:no grace"] += 1
        elif shortened == old.expires_at:
            COVERED["rotated:grace cut short by its own expiry"] += 1
        else:
            COVERED["rotated:grace ends first"] += 1
        old.rotated_to, old.expires_at = successor, shortened
        self.model[successor] = ModelToken(
            token_id=successor,
            secret=answer["token"],
            org=old.org,
            owner=old.owner,
            scopes=old.scopes,
            expires_at=expected_expiry,
            created_at=int(self.now),
            created_by=actor,
            rotated_from=token_id,
        )
        # Both work during the grace period (the old one not within the cache time of its end) ...
        self.check_decision(old, "GET", "v1/token")
        self.check_decision(self.model[successor], "GET", "v1/token")
        # ... the old one cannot be rotated again: 409 naming its successor ...
        again = self.console(old.owner).request("POST", f"/tokens/{token_id}/rotate", body=body)
        self.expect_conflict(again, "already_rotated", successor)
        COVERED["rotate:already rotated"] += 1
        # ... and while it is in its grace window it holds a place under the cap.
        if self.cap_reached(old.org, self.live_tokens(old.org, old.owner)):
            response = self.console(old.owner).create("model", ["reports:read"])  # any role may grant it
            self.expect_conflict(response, "active_token_limit_reached", "maximum")
        return successor

    @rule(token_id=tokens, live=LIVE_PICK, user=st.sampled_from(["owner", *USERS]), enabled=st.booleans())
    def set_enabled(self, token_id: str, live: int | None, user: str, enabled: bool) -> None:
        """PATCH /tokens/{id} {"enabled": ...}: idempotent; only for a token neither revoked nor expired."""
        token = self.pick(token_id, live)
        token_id = token.token_id
        user = token.owner if user == "owner" else user
        response = self.console(user).request("PATCH", f"/tokens/{token_id}", body={"enabled": enabled})
        if not self.may_manage(user, token):
            self.expect_not_found(response)
            return
        status = token.status(self.now)
        if status in ("revoked", "expired"):
            self.expect_conflict(response, "token_not_active", status)
            return
        assert response.status == 200, response.body
        if enabled:
            token.disabled_by = None
        elif token.disabled_by is None:
            token.disabled_by = user
            COVERED["disabled"] += 1
        body = response.json()
        assert body["status"] == token.status(self.now)
        assert body["disabled_by"] == token.disabled_by
        self.check_decision(token, "GET", "v1/token")  # from the moment the call returns

    @rule(
        user=st.sampled_from(["ada", "oz"]),
        cap=st.sampled_from([1, 2, 50]),
        unused_days=st.sampled_from([None, 30, 45]),
    )
    def set_policy(self, user: str, cap: int, unused_days: int | None) -> None:
        """PUT /settings: the cap, and the unused-token policy on (30 or 45 days) or off."""
        body = {**POLICY, "max_active_tokens_per_user": cap, "revoke_unused_after_days": unused_days}
        response = self.console(user).request("PUT", "/settings", body=body)
        if not CATALOG.role(self.roles[user]).organisation_admin:
            assert response.status == 403, response.body
            return
        assert response.status == 200, response.body
        assert response.json()["revoke_unused_after_days"] == unused_days
        self.cap[self.orgs[user]] = cap
        self.unused_days[self.orgs[user]] = unused_days

    @rule(
        seconds=st.one_of(
            st.integers(min_value=1, max_value=6 * DAY),
            st.integers(min_value=7, max_value=40).map(lambda days: days * DAY),  # toward unused deadlines
        ),
        cleanup=st.booleans(),
    )
    def advance_clock(self, seconds: int, cleanup: bool) -> None:
        """Time passes; after a week or more, the scheduled cleanup may run (when an unused-token
        policy is on)."""
        self.clock.now += seconds
        if cleanup and seconds >= 7 * DAY and self.policy_on():
            self.cleanup_now()

    @rule(token_id=tokens, boundary=st.sampled_from(["cache", "expiry"]), just_before=st.booleans())
    def advance_to_expiry(self, token_id: str, boundary: str, just_before: bool) -> None:
        """To a token's expiry (or the end of its grace period), or to its expiry less the
        authorizer's cache time (from when it is refused), or the second before either (if ahead);
        there, the token is presented: the boundaries are where bugs live."""
        token = self.model[token_id]
        moment = token.expires_at - (self.decisions.cache_seconds if boundary == "cache" else 0) - int(just_before)
        self.clock.now = max(self.now, float(moment))
        self.check_decision(token, "GET", "v1/token")

    @precondition(lambda self: self.policy_on())
    @rule(token_id=tokens, live=st.integers(min_value=0, max_value=15), just_before=st.booleans())
    def advance_to_unused_deadline(self, token_id: str, live: int, just_before: bool) -> None:
        """To the moment the organisation's unused-token policy stops a live token, or the second
        before; there, the token is presented and the cleanup runs. (Just before: the cleanup
        first, which must leave it, then the token, whose use moves the deadline. At the deadline:
        the token first, refused, then the cleanup, which revokes it.)"""
        token = self.pick(token_id, live, unused_deadline=True)
        deadline = self.unused_deadline(token)
        if deadline is None or not token.live(self.now):
            return
        self.clock.now = max(self.now, float(deadline - int(just_before)))
        if just_before:
            self.cleanup_now()
            self.check_decision(token, "GET", "v1/token")
        else:
            self.check_decision(token, "GET", "v1/token")
            self.cleanup_now()

    @rule(user=st.sampled_from(["ada", "max", "oz"]), reported_by_admin=st.booleans())
    def downgrade(self, user: str, reported_by_admin: bool) -> None:
        """The user's role is lowered one step; an admin of the organisation reports it, or (also
        when no admin is left) the user pool's event reaches the service. Either way the user's
        live tokens keep only the scopes the new role may grant, and one left with none is
        revoked."""
        current = ROLE_ORDER.index(self.roles[user])
        role = ROLE_ORDER[min(current + 1, len(ROLE_ORDER) - 1)]
        self.roles[user] = role
        org = self.orgs[user]
        admin = next((name for name in USERS if self.orgs[name] == org and self.roles[name] == "admin"), None)
        if reported_by_admin and admin is not None:
            response = self.console(admin).request("PUT", f"/members/{user}", body={"role": role})
            assert response.status == 200, response.body
            COVERED["membership:reported by an admin"] += 1
        else:
            wiring.get_service().apply_membership(org, user, role, "role")
            COVERED["membership:event"] += 1
        grantable = set(CATALOG.role(role).grantable_scopes)
        for token in self.model.values():
            if token.owner != user or not token.live(self.now) or token.scopes <= grantable:
                continue
            if token.scopes & grantable:
                token.scopes = frozenset(token.scopes & grantable)
                COVERED["membership:trimmed"] += 1
            else:
                token.revoked_at, token.revoked_by = int(self.now), "membership:role"
                COVERED["membership:revoked"] += 1

    def cleanup_now(self) -> None:
        """The scheduled cleanup, as deployed, for the unused-token policy: it revokes exactly
        the live tokens the policy calls unused, and announces each."""
        at = int(self.now)
        published = len(self.cleanup.publisher.sent)
        report = self.cleanup.run(at, store=NothingDue())
        assert report.complete and not report.failures, report
        unused = set()
        for token in self.model.values():
            if token.live(at) and token.unused_expired(at, self.unused_days[token.org]):
                token.revoked_at, token.revoked_by = at, UNUSED_POLICY_ACTOR
                unused.add(token.token_id)
        assert report.unused_revoked == len(unused), (report, sorted(unused))
        announced = {
            sent.detail["token_id"]
            for sent in self.cleanup.publisher.sent[published:]
            if sent.detail_type == "TokenRevoked" and sent.detail["kind"] == "policy"
        }
        assert announced == unused
        COVERED["cleanup:unused revoked"] += len(unused)

    @rule(
        token_id=tokens,
        live=LIVE_PICK,
        route=st.sampled_from(ROUTES),
        segment=st.text("abc123-", min_size=1, max_size=8),
    )
    def authorize_route(self, token_id: str, live: int | None, route: ProtectedRoute, segment: str) -> None:
        token = self.pick(token_id, live)
        path = concrete_path(route, segment)
        arn = f"{METHOD_ARN_PREFIX}/{route.method}/{path}"
        # Revoked, expired, disabled, unused-expired, past its grace: 401, whatever the route,
        # the owner's role or the token's scopes.
        result = self.check_decision(token, route.method, path)
        if result is None:
            return
        assert result["context"]["org_id"] == token.org
        assert result["context"]["owner_id"] == token.owner == result["principalId"]
        assert set(result["context"]["scopes"].split(" ")) == token.scopes
        if route.required_scopes <= token.scopes:
            assert policy_allows(result, arn), (route.resource, sorted(token.scopes))
        else:
            assert not policy_allows(result, arn), (route.resource, sorted(token.scopes))  # API Gateway: 403
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
        token = self.model[token_id]
        path = concrete_path(route, "i")
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(self.authorizer, token_event(with_other_secret(token.secret), route.method, path))
        assert self.decisions.last is not None
        assert self.decisions.last.reason is Reason.WRONG_SECRET

    @rule(token_id=tokens)
    def other_organisation_sees_nothing(self, token_id: str) -> None:
        token = self.model[token_id]
        outsider = "oz" if token.org == self.org else "ada"
        console = self.console(outsider)
        for method in ("GET", "DELETE"):
            self.expect_not_found(console.request(method, f"/tokens/{token_id}"))
        self.expect_not_found(console.request("PATCH", f"/tokens/{token_id}", body={"enabled": False}))
        self.expect_not_found(console.request("POST", f"/tokens/{token_id}/rotate", body={"grace": "PT0S"}))
        bulk = console.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})
        assert bulk.status == 200 and bulk.json()["results"] == [{"token_id": token_id, "result": "not_found"}]
        listing = console.request("GET", "/tokens", query={"all_users": "true", "limit": "100"})
        if listing.status == 200:  # the outsider may have been downgraded: then 403
            assert token_id not in {item["token_id"] for item in listing.json()["items"]}

    @rule(token_id=tokens)
    def owner_sees_the_model(self, token_id: str) -> None:
        token = self.model[token_id]
        response = self.console(token.owner).request("GET", f"/tokens/{token_id}")
        assert response.status == 200, response.body
        view = response.json()
        assert view["status"] == token.status(self.now)
        assert set(view["scopes"]) == token.scopes
        assert epoch(view["expires_at"]) == token.expires_at
        assert view["created_by"] == token.created_by
        assert (view["rotated_from"], view["rotated_to"]) == (token.rotated_from, token.rotated_to)
        assert view["revoked_by"] == token.revoked_by and view["disabled_by"] == token.disabled_by
        last_used = view["last_used_at"]
        assert (epoch(last_used) if last_used else None) == token.last_used_at
        # Rotation links both ways: the other end of each link names this token.
        for linked, back in ((token.rotated_from, "rotated_to"), (token.rotated_to, "rotated_from")):
            if linked is not None:
                assert getattr(self.model[linked], back) == token_id


# What the derandomized run must reach (the same sequences every time): every refusal reason,
# each kind of grace period (none, ending first, cut short by the token's own expiry), the cap
# counting a token in its grace window, the cleanup's revocations.
MUST_COVER = {
    **{f"refused:{reason.value}": 2 for reason in (Reason.REVOKED, Reason.EXPIRED, Reason.DISABLED, Reason.UNUSED)},
    "refused:expires_within_cache_time": 2,
    "refused:past grace": 2,
    "usable:in grace": 2,
    "rotated:no grace": 1,
    "rotated:grace ends first": 1,
    "rotated:grace cut short by its own expiry": 1,
    "rotate:already rotated": 1,
    "rotate:not active": 1,
    "cap:counts the grace window": 1,
    "cleanup:unused revoked": 1,
    "disabled": 2,
    "membership:trimmed": 1,
    "membership:revoked": 1,
}


# Examples per backend: the full run on moto; a shorter one on dynalite (DynamoDB's own expression
# validation, and no ReturnValuesOnConditionCheckFailure), which keeps the two within CI's budget.
EXAMPLES = {"moto": 100, "dynalite": 40}


def test_the_service_behaves_like_the_model(
    authorizer_app: Any, fake_apigateway: Any, dynamodb: Any, monkeypatch: pytest.MonkeyPatch, request: Any
) -> None:
    examples = EXAMPLES[request.node.callspec.params["dynamodb"]]
    EXERCISED.update(dict.fromkeys(EXERCISED, 0))
    COVERED.clear()
    clock = FakeClock(START)
    wiring.get_service().clock = clock
    authorizer_app.authorizer.clock = clock
    decisions = RecordingAuthorizer(authorizer_app.authorizer)
    monkeypatch.setattr(authorizer_app, "authorizer", decisions)
    TokenWorld.authorizer = authorizer_app
    TokenWorld.decisions = decisions
    TokenWorld.clock = clock
    run_state_machine_as_test(
        TokenWorld,
        settings=settings(
            max_examples=examples,
            stateful_step_count=40,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # The run reached every kind of decision (derandomized: the same sequences every time).
    print("COVERED", sorted(COVERED.items()), EXERCISED)
    assert min(EXERCISED.values()) >= 10, EXERCISED
    if examples == EXAMPLES["moto"]:  # the shorter run's sequences are not the same
        missed = {name: (COVERED[name], least) for name, least in MUST_COVER.items() if COVERED[name] < least}
        assert not missed, (missed, COVERED)
