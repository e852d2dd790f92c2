"""Request and response models of GET /audit and GET /audit/verify (pydantic v2)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, model_validator

from token_service.domain.audit import AuditAction, AuditQuery, AuditRecord, ChainCheck
from token_service.domain.clock import to_iso
from token_service.http.models import DATE_TIME_PATTERN, MAX_PAGE_SIZE, ApiModel, Documented
from token_service.http.pagination import INVALID_CURSOR, MAX_CURSOR_LENGTH


def _epoch(value: str) -> int:
    if not re.fullmatch(DATE_TIME_PATTERN, value):
        raise ValueError("must be a date-time with its UTC offset, e.g. 2027-01-31T12:00:00Z")
    try:
        return int(datetime.fromisoformat(value.upper()).astimezone(UTC).timestamp())
    except (ValueError, OverflowError):
        raise ValueError("is not a valid date-time") from None


# AuditAction's values, spelled out: an enum would be a $ref, which a query parameter cannot hold.
ActionName = Literal[
    "token.created",
    "token.rotated",
    "token.revoked",
    "token.disabled",
    "token.enabled",
    "token.scopes_trimmed",
    "policy.changed",
]
Instant = Annotated[
    str,
    Field(max_length=64),
    AfterValidator(_epoch),
    Documented(lambda: {"format": "date-time", "pattern": DATE_TIME_PATTERN}),
]


assert set(get_args(ActionName)) == {action.value for action in AuditAction}


class AuditListQuery(ApiModel):
    """GET /audit's query string; parameters it does not know are ignored."""

    limit: int = Field(50, ge=1, description=f"Page size; values above {MAX_PAGE_SIZE} are capped.")
    next: str | None = Field(
        None,
        max_length=MAX_CURSOR_LENGTH,
        description=f"The `next` of the previous page of this same listing; else a 400 ({INVALID_CURSOR}).",
    )
    token_id: str | None = Field(None, min_length=1, max_length=64, description="Records naming this token.")
    actor: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description=(
            'Records of this actor: a user id, "token:<id>", "policy:unused", "membership:<reason>", "leak:<source>".'
        ),
    )
    action: ActionName | None = None
    since: Instant | None = Field(
        None, description="Records at or after this time. A day that does not exist (02-30) is a 400."
    )
    until: Instant | None = Field(None, description="Records at or before this time; not before `since`, else a 400.")

    @model_validator(mode="after")
    def _ordered(self) -> AuditListQuery:
        if self.since is not None and self.until is not None and int(self.since) > int(self.until):
            raise ValueError("until: must not be before since")
        return self

    def query(self, org_id: str, start_key: dict[str, str] | None) -> AuditQuery:
        return AuditQuery(
            org_id=org_id,
            limit=min(self.limit, MAX_PAGE_SIZE),
            start_key=start_key,
            token_id=self.token_id,
            actor=self.actor,
            action=AuditAction(self.action) if self.action is not None else None,
            since=int(self.since) if self.since is not None else None,
            until=int(self.until) if self.until is not None else None,
        )


class AuditRecordView(ApiModel):
    seq: int = Field(description="The record's place in the organisation's chain, from 1.")
    at: str
    action: AuditAction
    actor: str
    token_ids: list[str]
    source_ip: str | None = Field(None, description="The caller's address, where a request made the change.")
    details: dict[str, Any] = Field(
        description="What changed: kind of revoke, scopes, settings, where a leak was found."
    )
    event_id: str
    prev_hash: str = Field(description="SHA-256 (hex) of the previous record; 64 zeros for the first.")
    hash: str = Field(description="SHA-256 (hex) of this record's canonical form, its seq and prev_hash.")

    @classmethod
    def from_record(cls, record: AuditRecord) -> AuditRecordView:
        entry = record.entry
        return cls(
            seq=record.seq,
            at=to_iso(entry.at),
            action=entry.action,
            actor=entry.actor,
            token_ids=list(entry.token_ids),
            source_ip=entry.source_ip,
            details=entry.details,
            event_id=entry.event_id,
            prev_hash=record.prev_hash,
            hash=record.hash,
        )


class AuditPageView(ApiModel):
    items: list[AuditRecordView]
    next: str | None = Field(None, description="The cursor of the next page; null on the last.")


class ChainCheckView(ApiModel):
    intact: bool
    records: int = Field(description="Records walked.")
    first_seq: int | None = Field(None, description="The oldest record kept (older ones expired).")
    last_seq: int | None = None
    broken_at: int | None = Field(None, description="The seq of the first broken link.")
    reason: str | None = None

    @classmethod
    def from_check(cls, check: ChainCheck) -> ChainCheckView:
        return cls(
            intact=check.intact,
            records=check.records,
            first_seq=check.first_seq,
            last_seq=check.last_seq,
            broken_at=check.broken_at,
            reason=check.reason,
        )
