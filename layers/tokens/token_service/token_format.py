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

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 16
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
BODY_LENGTH = ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
HASH_VERSION = 1  # sha256 of the whole token; bump when the hashing scheme changes

_BASE = len(ALPHABET)
_BODY_PATTERN = re.compile(f"[0-9A-Za-z]{{{BODY_LENGTH}}}")
_PREFIX_PATTERN = re.compile(r"[a-z][a-z0-9]{1,9}")


class InvalidTokenFormat(ValueError):
    """The string is not a well-formed token; no database was consulted."""


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
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, remainder = divmod(value, _BASE)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def generate_token(prefix: str) -> ParsedToken:
    token_id = random_base62(ID_LENGTH)
    unchecked = f"{prefix}_{token_id}{random_base62(SECRET_LENGTH)}"
    return ParsedToken(token_id=token_id, token=unchecked + checksum(unchecked))


def parse_token(token: object, prefix: str) -> ParsedToken:
    """Checks prefix, length, alphabet and checksum; raises InvalidTokenFormat otherwise."""
    if not isinstance(token, str):
        raise InvalidTokenFormat("not a string")
    head = f"{prefix}_"
    if len(token) != len(head) + BODY_LENGTH or not token.startswith(head):
        raise InvalidTokenFormat("wrong prefix or length")
    body = token[len(head) :]
    if not _BODY_PATTERN.fullmatch(body):
        raise InvalidTokenFormat("characters outside the token alphabet")
    if not hmac.compare_digest(checksum(token[:-CHECKSUM_LENGTH]), token[-CHECKSUM_LENGTH:]):
        raise InvalidTokenFormat("checksum mismatch")
    return ParsedToken(token_id=body[:ID_LENGTH], token=token)


def hash_token(token: str) -> str:
    # A fast hash is enough for 190 random bits (NIST 800-63B 5.1.2.2: >= 112 bits).
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def matches_hash(token: ParsedToken, stored_hash: str) -> bool:
    return hmac.compare_digest(token.secret_hash(), stored_hash)


def display_hint(token: str) -> str:
    """What lists show: the prefix and the last four characters."""
    prefix = token.split("_", 1)[0]
    return f"{prefix}_…{token[-4:]}"
