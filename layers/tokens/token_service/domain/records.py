"""The stored state of the domain: tokens, each user's active set, the organisation's policy.

Plain dataclasses rather than pydantic models because the authorizer reads TokenRecord on
every request and must not pay pydantic's import time at cold start. How they are laid out
in DynamoDB is storage's business (token_service.storage.items).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from token_service.domain.lifecycle import DAY, PURGE, Schedule
from token_service.domain.token_format import HASH_VERSION, ParsedToken, display_hint


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    org_id: str
    owner_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: int
    created_at_us: int  # microseconds, orders tokens created within one second
    created_by: str
    expires_at: int
    secret_hash: str
    hash_version: int
    display_hint: str
    ttl: int
    revoked_at: int | None = None
    revoked_by: str | None = None
    last_used_at: int | None = None
    last_used_ip: str | None = None
    expired_marked_at: int | None = None  # set by the cleanup run that handled the expiry
    lifecycle_stage: str | None = None  # next lifecycle stage (token_service.domain.lifecycle)
    lifecycle_due: int | None = None
    disabled_at: int | None = None  # refused while set; enabling clears it
    disabled_by: str | None = None
    rotated_from: str | None = None  # the token this one replaced
    rotated_to: str | None = None  # the token that replaced this one
    unused_after_days: int | None = None  # the organisation's policy, copied here for the authorizer
    # The networks the token may be used from (normalised, sorted, unique); empty: any address.
    allowed_cidrs: tuple[str, ...] = ()

    @classmethod
    def issue(
        cls,
        token: ParsedToken,
        *,
        org_id: str,
        owner_id: str,
        name: str,
        scopes: tuple[str, ...],
        now: float,
        expires_at: int,
        retention_seconds: int,
        schedule: Schedule,
        created_by: str | None = None,
        rotated_from: str | None = None,
        unused_after_days: int | None = None,
        allowed_cidrs: tuple[str, ...] = (),
    ) -> TokenRecord:
        """The stored record of a newly minted token: hash only, first lifecycle stage set."""
        ttl = expires_at + retention_seconds
        stage, due = schedule.first(expires_at, ttl, now)
        return cls(
            token_id=token.token_id,
            org_id=org_id,
            owner_id=owner_id,
            name=name,
            scopes=scopes,
            created_at=int(now),
            created_at_us=int(now * 1_000_000),
            created_by=created_by or owner_id,
            expires_at=expires_at,
            secret_hash=token.secret_hash(),
            hash_version=HASH_VERSION,
            display_hint=display_hint(token.token),
            ttl=ttl,
            lifecycle_stage=stage,
            lifecycle_due=due,
            rotated_from=rotated_from,
            unused_after_days=unused_after_days,
            allowed_cidrs=allowed_cidrs,
        )

    def revoked(self, at: int, by: str, retention_seconds: int) -> TokenRecord:
        """The record as a revoke leaves it (the repository's revoke writes the same attributes)."""
        ttl = at + retention_seconds
        return replace(self, revoked_at=at, revoked_by=by, ttl=ttl, lifecycle_stage=PURGE, lifecycle_due=ttl)

    def status(self, now: float) -> str:
        """revoked, expired, disabled or active, in that order of precedence."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        return "disabled" if self.disabled_at is not None else "active"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the authorizer's decision reads of a token, and nothing more: it is read on every
    request, so storage fetches and decodes only these attributes."""

    token_id: str
    org_id: str
    owner_id: str
    scopes: tuple[str, ...]
    expires_at: int
    secret_hash: str
    hash_version: int
    created_at: int = 0
    revoked_at: int | None = None
    disabled_at: int | None = None
    last_used_at: int | None = None
    unused_after_days: int | None = None
    allowed_cidrs: tuple[str, ...] = ()  # empty: any address

    def unused_until(self) -> int | None:
        """When the organisation's unused-token policy stops this token, if it has one."""
        if self.unused_after_days is None:
            return None
        since = self.last_used_at if self.last_used_at is not None else self.created_at
        return since + self.unused_after_days * DAY


@dataclass(frozen=True, slots=True)
class Slot:
    expires_at: int
    reserved_at: int  # when a create took the slot, before it wrote the token


@dataclass(frozen=True, slots=True)
class ActiveSet:
    """A user's unrevoked tokens (id -> slot), versioned for optimistic locking.

    Create reads it, drops slots whose expiry has passed, checks the cap, and writes it back
    with the new token's slot, conditional on the version it read (concurrent creates cannot
    both take the last slot); then it writes the token.
    """

    tokens: dict[str, Slot] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    max_lifetime_days: int = 366
    default_lifetime_days: int = 90
    max_active_tokens_per_user: int = 50
    revoke_unused_after_days: int | None = None  # None: tokens are never revoked for not being used
    updated_at: int | None = None
    updated_by: str | None = None
