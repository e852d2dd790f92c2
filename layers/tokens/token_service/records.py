"""Stored items and their DynamoDB keys.

These are plain dataclasses rather than pydantic models because the authorizer reads
TokenRecord on every request and must not pay pydantic's import time at cold start.

Table layout (one table, see template.yaml):

| item          | pk                        | sk              | index keys                                   |
|---------------|---------------------------|-----------------|----------------------------------------------|
| token         | TOKEN#<token_id>          | TOKEN           | ByOwner: ORG#<org>#USER#<owner> / <created>  |
|               |                           |                 | ByOrg:   ORG#<org> / <created>               |
| active set    | ORG#<org>#USER#<owner>    | ACTIVE_TOKENS   | (none)                                       |
| org policy    | ORG#<org>                 | POLICY          | (none)                                       |

The token's base key is its id alone because the authorizer knows nothing else before
it has read the item; every other key, and every index key, starts with the organisation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from token_service.lifecycle import PURGE, Schedule, lifecycle_keys
from token_service.token_format import HASH_VERSION, ParsedToken, display_hint

TOKEN_SORT_KEY = "TOKEN"  # noqa: S105 (a key name, not a secret)
ACTIVE_SET_SORT_KEY = "ACTIVE_TOKENS"
POLICY_SORT_KEY = "POLICY"
OWNER_INDEX = "ByOwner"
ORG_INDEX = "ByOrg"


def token_key(token_id: str) -> dict[str, str]:
    return {"pk": f"TOKEN#{token_id}", "sk": TOKEN_SORT_KEY}


def owner_partition(org_id: str, owner_id: str) -> str:
    return f"ORG#{org_id}#USER#{owner_id}"


def org_partition(org_id: str) -> str:
    return f"ORG#{org_id}"


def active_set_key(org_id: str, owner_id: str) -> dict[str, str]:
    return {"pk": owner_partition(org_id, owner_id), "sk": ACTIVE_SET_SORT_KEY}


def policy_key(org_id: str) -> dict[str, str]:
    return {"pk": org_partition(org_id), "sk": POLICY_SORT_KEY}


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | Decimal) else int(str(value))


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


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
    lifecycle_stage: str | None = None  # next lifecycle stage (token_service.lifecycle)
    lifecycle_due: int | None = None

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
            created_by=owner_id,
            expires_at=expires_at,
            secret_hash=token.secret_hash(),
            hash_version=HASH_VERSION,
            display_hint=display_hint(token.token),
            ttl=ttl,
            lifecycle_stage=stage,
            lifecycle_due=due,
        )

    def revoked(self, at: int, by: str, retention_seconds: int) -> TokenRecord:
        """The record as a revoke leaves it (repository.revoke writes the same attributes)."""
        ttl = at + retention_seconds
        return replace(self, revoked_at=at, revoked_by=by, ttl=ttl, lifecycle_stage=PURGE, lifecycle_due=ttl)

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    @property
    def sort_key(self) -> str:
        return f"{self.created_at_us:017d}#{self.token_id}"

    def to_item(self) -> dict[str, Any]:
        item = {key: value for key, value in asdict(self).items() if value is not None}
        item["scopes"] = list(self.scopes)
        if self.lifecycle_stage is not None and self.lifecycle_due is not None:
            item.update(lifecycle_keys(self.lifecycle_stage, self.lifecycle_due, self.token_id))
        return {
            **token_key(self.token_id),
            "gsi1pk": owner_partition(self.org_id, self.owner_id),
            "gsi1sk": self.sort_key,
            "gsi2pk": org_partition(self.org_id),
            "gsi2sk": self.sort_key,
            **item,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> TokenRecord:
        return cls(
            token_id=str(item["token_id"]),
            org_id=str(item["org_id"]),
            owner_id=str(item["owner_id"]),
            name=str(item["name"]),
            scopes=tuple(str(scope) for scope in item.get("scopes", [])),
            created_at=_int(item["created_at"]),
            created_at_us=_int(item["created_at_us"]),
            created_by=str(item["created_by"]),
            expires_at=_int(item["expires_at"]),
            secret_hash=str(item["secret_hash"]),
            hash_version=_int(item["hash_version"]),
            display_hint=str(item["display_hint"]),
            ttl=_int(item["ttl"]),
            revoked_at=_optional_int(item.get("revoked_at")),
            revoked_by=item.get("revoked_by"),
            last_used_at=_optional_int(item.get("last_used_at")),
            last_used_ip=item.get("last_used_ip"),
            expired_marked_at=_optional_int(item.get("expired_marked_at")),
            lifecycle_stage=item.get("lifecycle_stage"),
            lifecycle_due=_optional_int(item.get("lifecycle_due")),
        )


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

    def to_attribute(self) -> dict[str, dict[str, int]]:
        return {
            token_id: {"expires_at": slot.expires_at, "reserved_at": slot.reserved_at}
            for token_id, slot in self.tokens.items()
        }

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> ActiveSet:
        if not item:
            return cls()
        tokens = {
            str(token_id): Slot(expires_at=_int(slot["expires_at"]), reserved_at=_int(slot["reserved_at"]))
            for token_id, slot in item.get("tokens", {}).items()
        }
        return cls(tokens=tokens, version=_int(item.get("version", 0)))


@dataclass(frozen=True, slots=True)
class OrgPolicy:
    max_lifetime_days: int = 366
    default_lifetime_days: int = 90
    max_active_tokens_per_user: int = 50
    updated_at: int | None = None
    updated_by: str | None = None

    def to_item(self, org_id: str) -> dict[str, Any]:
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        return {**policy_key(org_id), **fields}

    @classmethod
    def from_item(cls, item: dict[str, Any] | None) -> OrgPolicy:
        if not item:
            return cls()
        return cls(
            max_lifetime_days=_int(item["max_lifetime_days"]),
            default_lifetime_days=_int(item["default_lifetime_days"]),
            max_active_tokens_per_user=_int(item["max_active_tokens_per_user"]),
            updated_at=_optional_int(item.get("updated_at")),
            updated_by=item.get("updated_by"),
        )
