"""The token format: ``<prefix>_<id><secret><checksum>``, all base62.

* ``id``: 16 random characters (~95 bits), public, the DynamoDB key of the token,
  so checking a token costs one GetItem.
* ``secret``: 32 characters from :mod:`secrets` (~190 bits).
* ``checksum``: CRC32 of everything before it, 6 base62 characters (as in GitHub's
  token format), so a mistyped or made-up token is rejected without a database read.

Only the SHA-256 of the whole token is stored; :func:`matches_hash` compares in
constant time. This module is on the authorizer's hot path: standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from dataclasses import dataclass
from functools import lru_cache

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 16
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
BODY_LENGTH = ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
HASH_VERSION = 1  # sha256 of the whole token; bump when the hashing scheme changes

_BASE = len(ALPHABET)
_CHECKSUM_PLACES = tuple(_BASE**place for place in reversed(range(CHECKSUM_LENGTH)))  # a CRC32 fits 6 places
_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{1,9}")


@dataclass(frozen=True, slots=True)
class ParsedToken:
    token_id: str
    token: str

    def secret_hash(self) -> str:
        return hash_token(self.token)


def token_regex(prefix: str) -> str:
    """The regular expression published for secret scanners."""
    return rf"\b{re.escape(prefix)}_[0-9A-Za-z]{{{BODY_LENGTH}}}\b"


def validate_prefix(prefix: str) -> str:
    if not _PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError("token prefix must be 2-10 characters: a lowercase letter, then letters or digits")
    return prefix


def random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def checksum(data: str) -> str:
    value = zlib.crc32(data.encode("ascii"))
    return "".join([ALPHABET[value // place % _BASE] for place in _CHECKSUM_PLACES])


def generate_token(prefix: str) -> ParsedToken:
    token_id = random_base62(ID_LENGTH)
    unchecked = f"{prefix}_{token_id}{random_base62(SECRET_LENGTH)}"
    return ParsedToken(token_id=token_id, token=unchecked + checksum(unchecked))


def parse_token(token: object, prefix: str) -> ParsedToken | None:
    """The token's parts, or None unless prefix, length, alphabet and checksum are right.

    On the authorizer's path for every request, so it is one regular expression and the
    checksum, and None rather than an exception: a rejection costs microseconds."""
    if not isinstance(token, str):
        return None
    parts = _token_pattern(prefix).fullmatch(token)
    if parts is None or not hmac.compare_digest(checksum(token[:-CHECKSUM_LENGTH]), parts[2]):
        return None
    return ParsedToken(token_id=parts[1], token=parts[0])


@lru_cache(maxsize=4)
def _token_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"{re.escape(prefix)}_([0-9A-Za-z]{{{ID_LENGTH}}})[0-9A-Za-z]{{{SECRET_LENGTH}}}([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})"
    )


def hash_token(token: str) -> str:
    # A fast hash is enough for 190 random bits (NIST 800-63B 5.1.2.2: >= 112 bits).
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def matches_hash(token: ParsedToken, stored_hash: str) -> bool:
    return hmac.compare_digest(token.secret_hash(), stored_hash)


def display_hint(token: str) -> str:
    """What lists show: the prefix and the last four characters."""
    prefix = token.split("_", 1)[0]
    return f"{prefix}_…{token[-4:]}"
