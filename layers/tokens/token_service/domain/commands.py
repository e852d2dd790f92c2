"""What the token service is asked to do, and what it answers: plain values, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from token_service.domain.records import TokenRecord


@dataclass(frozen=True, slots=True)
class Expiry:
    """A requested expiry: a calendar date (valid through that day, UTC) or an instant."""

    at: datetime
    is_date: bool

    @property
    def epoch(self) -> int:
        return int(self.at.timestamp())


@dataclass(frozen=True, slots=True)
class NewToken:
    name: str
    scopes: tuple[str, ...]  # sorted, without duplicates
    expiry: Expiry | None  # None: the organisation's default lifetime
    # The networks the token may be used from, normalised, sorted and unique; empty: any address.
    allowed_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Rotation:
    """Replace a token: the old one keeps working for `grace_seconds` (never past its own expiry)."""

    grace_seconds: int
    expiry: Expiry | None  # the new token's; None: the organisation's default lifetime


@dataclass(frozen=True, slots=True)
class PolicyChange:
    max_lifetime_days: int
    default_lifetime_days: int
    max_active_tokens_per_user: int
    revoke_unused_after_days: int | None = None


@dataclass(frozen=True, slots=True)
class BulkSelection:
    """Exactly one of: a list of ids, one user's active tokens, the organisation's active tokens."""

    token_ids: tuple[str, ...] | None = None
    owner_id: str | None = None
    organisation: bool = False


@dataclass(frozen=True, slots=True)
class Listing:
    """Whose tokens a listing reads: one user's (owner_id) or the whole organisation's (None)."""

    org_id: str
    owner_id: str | None


PageKey = dict[str, str]
"""Where a listing resumes: opaque to the domain, checked by storage."""


@dataclass(frozen=True, slots=True)
class TokenPage:
    records: list[TokenRecord]
    next_key: PageKey | None


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    secret: str


@dataclass(frozen=True, slots=True)
class RotatedToken:
    created: CreatedToken
    replaced: TokenRecord  # the old token, linked to its successor, with its shortened expiry


@dataclass(frozen=True, slots=True)
class RevokeOutcome:
    record: TokenRecord
    newly_revoked: bool


RevokeResult = Literal["revoked", "already_revoked", "not_found"]


API_KINDS = ("restapis", "apis")  # REST APIs, HTTP APIs: as API Gateway names them in resource paths


@dataclass(frozen=True, slots=True)
class ApiStage:
    """An API Gateway stage whose authorizer cache may hold a token's answer, written as API
    Gateway's resource path: restapis/<id>/stages/<stage> (REST) or apis/<id>/stages/<stage> (HTTP)."""

    kind: str
    api_id: str
    stage: str

    @classmethod
    def parse(cls, text: str) -> ApiStage:
        parts = text.strip().split("/")
        if len(parts) != 4 or parts[0] not in API_KINDS or parts[2] != "stages" or not parts[1] or not parts[3]:
            raise ValueError(f"{text.strip()!r} is not restapis/<id>/stages/<stage> or apis/<id>/stages/<stage>")
        return cls(parts[0], parts[1], parts[3])

    def __str__(self) -> str:
        return f"{self.kind}/{self.api_id}/stages/{self.stage}"
