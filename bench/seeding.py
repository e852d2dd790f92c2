"""Token items for the benchmarks, written the way the service writes them.

Every item is `token_item(TokenRecord(...))` serialized with `token_service.storage.attribute_values.serialize`,
its lifecycle stage from `config.schedule.first(...)` (unless a figure places it), so the
items have every attribute and index key a real token has. Import after `environment.configure`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from token_service.config import management_config
from token_service.domain.records import TokenRecord
from token_service.domain.token_format import ALPHABET, HASH_VERSION, ID_LENGTH, display_hint
from token_service.storage.attribute_values import serialize
from token_service.storage.items import token_item

DAY = 86_400
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:benchapi01/dev/GET/v1/reports"
_BATCH = 25  # BatchWriteItem's limit
# For tokens nobody presents: a well-formed hash of no token (generating a secret per item
# would double the seeding time).
PLACEHOLDER_HASH = hashlib.sha256(b"bench: no token hashes to this").hexdigest()


def token_id(index: int, tag: str = "") -> str:
    """A valid 16-character base62 id, unique per (tag, index), sortable by index."""
    digits = []
    value = index
    for _ in range(10):
        value, remainder = divmod(value, len(ALPHABET))
        digits.append(ALPHABET[remainder])
    return (tag + "B" * ID_LENGTH)[: ID_LENGTH - 10] + "".join(reversed(digits))


def record(
    identifier: str,
    *,
    org_id: str,
    owner_id: str,
    now: float,
    expires_at: int | None = None,
    scopes: Sequence[str] = ("reports:read",),
    secret_hash: str | None = None,
    created_at_us: int | None = None,
    last_used_at: int | None = None,
) -> TokenRecord:
    config = management_config()
    expires = expires_at if expires_at is not None else int(now) + 90 * DAY
    ttl = expires + config.retention_days * DAY
    created_us = created_at_us if created_at_us is not None else int(now * 1_000_000)
    token = TokenRecord(
        token_id=identifier,
        org_id=org_id,
        owner_id=owner_id,
        name=f"bench {identifier}",
        scopes=tuple(scopes),
        created_at=created_us // 1_000_000,
        created_at_us=created_us,
        created_by=owner_id,
        expires_at=expires,
        secret_hash=secret_hash or PLACEHOLDER_HASH,
        hash_version=HASH_VERSION,
        display_hint=display_hint(f"{config.token_prefix}_{secrets.token_hex(4)}"),
        ttl=ttl,
        last_used_at=last_used_at,
    )
    stage, due = config.schedule.first(token.expires_at, token.ttl, now)
    return replace(token, lifecycle_stage=stage, lifecycle_due=due)


def token_event(token: str) -> dict[str, str]:
    """An API Gateway TOKEN authorizer event presenting `token`."""
    return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": METHOD_ARN}


def items(records: Iterable[TokenRecord]) -> Iterator[dict[str, Any]]:
    for token in records:
        yield serialize(token_item(token))


def batch_write(client: Any, table: str, serialized: Iterable[dict[str, Any]], workers: int = 1) -> int:
    """BatchWriteItem in chunks of 25 (unprocessed items retried); returns the item count."""
    all_items = list(serialized)
    chunks = [all_items[start : start + _BATCH] for start in range(0, len(all_items), _BATCH)]

    def write(chunk: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        for _ in range(20):
            response = client.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
        raise RuntimeError("BatchWriteItem kept returning unprocessed items")

    if workers <= 1:
        for chunk in chunks:
            write(chunk)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(write, chunks))
    return len(all_items)
