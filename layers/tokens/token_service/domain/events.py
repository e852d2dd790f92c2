"""Lifecycle events: their names, what each carries (ids and actors, never a secret), and the
sink they go to (token_service.storage.events publishes them on the EventBridge bus)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from token_service.domain.clock import to_iso
from token_service.domain.records import TokenRecord


class TokenEvent(StrEnum):
    """The detail-type of each event on the bus."""

    CREATED = "TokenCreated"
    ROTATED = "TokenRotated"
    REVOKED = "TokenRevoked"
    DISABLED = "TokenDisabled"
    ENABLED = "TokenEnabled"
    EXPIRING_SOON = "TokenExpiringSoon"
    EXPIRED = "TokenExpired"
    LEAKED = "TokenLeaked"  # found in public by a secret-scanning partner; revoked


BULK_EVENT_IDS = 500  # token ids per bulk TokenRevoked event: well inside EventBridge's 256 KB


class EventSink(Protocol):
    """Publishes one lifecycle event; False when it was not accepted."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool: ...


def token_detail(record: TokenRecord, actor: str) -> dict[str, Any]:
    """Which token, whose, and who acted: the detail every single-token event carries."""
    return {
        "org_id": record.org_id,
        "owner_id": record.owner_id,
        "token_id": record.token_id,
        "name": record.name,
        "expires_at": to_iso(record.expires_at),
        "actor": actor,
    }


def bulk_revoked_details(org_id: str, actor: str, token_ids: list[str]) -> list[dict[str, Any]]:
    """A bulk revoke as one event per BULK_EVENT_IDS ids, each with the total count."""
    parts = [token_ids[start : start + BULK_EVENT_IDS] for start in range(0, len(token_ids), BULK_EVENT_IDS)]
    return [
        {
            "org_id": org_id,
            "kind": "bulk",
            "actor": actor,
            "count": len(token_ids),
            "part": number,
            "parts": len(parts),
            "token_ids": part,
        }
        for number, part in enumerate(parts, start=1)
    ]
