"""The audit log: one record per change to a token or a policy, chained per organisation.

A change and its record cannot come apart: the record's entry is written in the same single-
item write as the change (an outbox on the changed item, token_service.storage.audit), and
appended to the organisation's chain afterwards, by the function that made the change or, if
it died first, by the next one that looks (the scheduled cleanup, GET /audit). The chain:
record n carries the SHA-256 of record n-1 and its own, computed over its canonical form, so
an edited, removed or reordered record breaks every link after it, and `verify` names the
first broken one. Records never hold a secret: ids, actors, addresses and settings only.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

GENESIS_HASH = "0" * 64  # the "previous hash" of an organisation's first record


class AuditAction(StrEnum):
    CREATED = "token.created"
    ROTATED = "token.rotated"
    REVOKED = "token.revoked"
    DISABLED = "token.disabled"
    ENABLED = "token.enabled"
    SCOPES_TRIMMED = "token.scopes_trimmed"
    POLICY_CHANGED = "policy.changed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What happened, before it has a place in the chain. `subject` names the item the change
    was written to: a token id, or "policy" for the organisation's policy."""

    org_id: str
    action: AuditAction
    actor: str  # a user id, "token:<id>", "policy:unused", "membership:<reason>", "leak:<source>"
    subject: str
    token_ids: tuple[str, ...] = ()
    at: int = 0
    source_ip: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: secrets.token_hex(8))

    def to_json(self) -> str:
        return canonical(self.fields())

    def fields(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "org_id": self.org_id,
            "action": self.action.value,
            "actor": self.actor,
            "subject": self.subject,
            "token_ids": list(self.token_ids),
            "at": self.at,
            "source_ip": self.source_ip,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, text: str) -> AuditEntry:
        data = json.loads(text)
        return cls(
            org_id=data["org_id"],
            action=AuditAction(data["action"]),
            actor=data["actor"],
            subject=data["subject"],
            token_ids=tuple(data["token_ids"]),
            at=int(data["at"]),
            source_ip=data["source_ip"],
            details=dict(data["details"]),
            event_id=data["event_id"],
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry at its place in the organisation's chain."""

    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str

    @classmethod
    def after(cls, previous_seq: int, previous_hash: str, entry: AuditEntry) -> AuditRecord:
        seq = previous_seq + 1
        return cls(seq, entry, previous_hash, link_hash(previous_hash, seq, entry.fields()))


def canonical(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8 as is (what the hashes are taken of)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link_hash(prev_hash: str, seq: int, fields: dict[str, Any]) -> str:
    text = canonical({"prev_hash": prev_hash, "seq": seq, **fields})
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record as read back: its fields as stored, whatever anyone did to them."""

    seq: int
    fields: dict[str, Any]
    prev_hash: str
    hash: str
    copies: dict[str, Any] = field(default_factory=dict)  # searchable copies of some fields


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """GET /audit/verify's answer: intact, or the first broken link and why."""

    records: int
    first_seq: int | None
    last_seq: int | None
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


def verify_chain(records: Iterable[StoredRecord]) -> ChainCheck:
    """Walks records in ascending seq order. The oldest kept record starts the walk (older ones
    expire after the retention period); from there each must follow the one before: the next
    seq, the previous record's hash, and a hash that matches its own content."""
    count = 0
    first: int | None = None
    previous: StoredRecord | None = None
    for record in records:
        count += 1
        first = record.seq if first is None else first
        broken = _broken_link(previous, record)
        if broken is not None:
            return ChainCheck(count, first, record.seq, broken_at=record.seq, reason=broken)
        previous = record
    return ChainCheck(count, first, previous.seq if previous else None)


def _broken_link(previous: StoredRecord | None, record: StoredRecord) -> str | None:
    if previous is None and record.seq == 1 and record.prev_hash != GENESIS_HASH:
        return "the first record does not start the chain"
    if previous is not None:
        if record.seq != previous.seq + 1:
            return f"record {previous.seq + 1} is missing"
        if record.prev_hash != previous.hash:
            return f"its previous hash is not record {previous.seq}'s hash"
    if link_hash(record.prev_hash, record.seq, record.fields) != record.hash:
        return "its content does not match its hash (edited)"
    if any(record.fields.get(name) != value for name, value in record.copies.items()):
        return "its searchable copy differs from its content (edited)"
    return None


class AuditTrail(Protocol):
    """The chain's storage (token_service.storage.audit.AuditLog), as the service uses it."""

    def chain(self, entries: list[AuditEntry]) -> None:
        """Appends entries already written to their items' outboxes (best effort: an entry
        left there is appended by the next drain)."""

    def drain(self, org_id: str) -> int: ...

    def drain_all(self) -> int: ...

    def records(self, query: AuditQuery) -> tuple[list[AuditRecord], dict[str, str] | None]: ...

    def stored_records(self, org_id: str) -> Iterator[StoredRecord]: ...


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """GET /audit: newest first, filtered."""

    org_id: str
    limit: int = 50
    start_key: dict[str, str] | None = None
    token_id: str | None = None
    actor: str | None = None
    action: AuditAction | None = None
    since: int | None = None
    until: int | None = None
