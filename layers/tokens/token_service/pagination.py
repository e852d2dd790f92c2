"""Opaque list cursors: the DynamoDB LastEvaluatedKey, checked before it is used again."""

from __future__ import annotations

import base64
import binascii
import json

from token_service.errors import InvalidRequest
from token_service.records import TOKEN_SORT_KEY

_MAX_CURSOR_LENGTH = 1024


def encode_cursor(last_key: dict[str, str] | None) -> str | None:
    if not last_key:
        return None
    raw = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, partition_attribute: str, partition: str) -> dict[str, str] | None:
    """Refuses a cursor that does not belong to this listing, so a forged one cannot
    reach into another partition nor make DynamoDB fail with a 500."""
    if cursor is None:
        return None
    invalid = InvalidRequest.field("next", "is not a valid cursor for this listing")
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise invalid
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    sort_attribute = partition_attribute.replace("pk", "sk")
    expected_keys = {"pk", "sk", partition_attribute, sort_attribute}
    if (
        not isinstance(decoded, dict)
        or set(decoded) != expected_keys
        or not all(isinstance(value, str) for value in decoded.values())
        or decoded[partition_attribute] != partition
        or decoded["sk"] != TOKEN_SORT_KEY
        or not decoded["pk"].startswith("TOKEN#")
    ):
        raise invalid
    return decoded
