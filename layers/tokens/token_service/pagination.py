"""Opaque list cursors: the DynamoDB LastEvaluatedKey, checked before it is used again."""

from __future__ import annotations

import base64
import binascii
import json
import re

from token_service.errors import InvalidRequest
from token_service.records import TOKEN_SORT_KEY
from token_service.token_format import ID_LENGTH

_MAX_CURSOR_LENGTH = 1024
_TOKEN_KEY = re.compile(rf"TOKEN#([0-9A-Za-z]{{{ID_LENGTH}}})")
_SORT_KEY = re.compile(rf"\d{{17}}#([0-9A-Za-z]{{{ID_LENGTH}}})")


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
    ):
        raise invalid
    # Every key value must be one the table can hold, so DynamoDB never sees a forged one.
    token = _TOKEN_KEY.fullmatch(decoded["pk"])
    position = _SORT_KEY.fullmatch(decoded[sort_attribute])
    if not token or not position or token.group(1) != position.group(1):
        raise invalid
    return decoded
