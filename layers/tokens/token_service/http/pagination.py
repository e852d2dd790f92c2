"""Opaque list cursors: where a listing resumes, as a URL-safe string.

Only the shape is checked here; storage refuses a position that does not belong to the
listing it is used with (InvalidPageKey), which the error table reports on `next` too.
"""

from __future__ import annotations

import base64
import binascii
import json

from token_service.domain.commands import PageKey
from token_service.domain.errors import InvalidRequest

MAX_CURSOR_LENGTH = 1024
INVALID_CURSOR = "is not a valid cursor for this listing"


def encode_cursor(page_key: PageKey | None) -> str | None:
    if not page_key:
        return None
    raw = json.dumps(page_key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> PageKey | None:
    if cursor is None:
        return None
    invalid = InvalidRequest.field("next", INVALID_CURSOR)
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(decoded, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in decoded.items()
    ):
        raise invalid
    return decoded
