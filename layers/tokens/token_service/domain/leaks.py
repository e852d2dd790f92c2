"""Leaked-token reports (GitHub's secret-scanning partner program): which signing keys to trust,
and a verdict on each reported token.

Standard library only. The signature arithmetic (the report function's `cryptography`) and the
key list's download are handed in, so that no other function loads either.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

from token_service.domain.token_format import parse_token

LEAK_WORKERS = 16  # stored-hash checks of well-formed candidates at once; each mostly waits on the network
Label = Literal["true_positive", "false_positive"]
TRUE_POSITIVE: Label = "true_positive"
FALSE_POSITIVE: Label = "false_positive"


class KeyListUnavailable(Exception):
    """The signing keys' list could not be fetched or read (the fetcher says why in its log)."""


# (PEM public key, DER signature, signed bytes) -> whether the signature is the key's over the bytes.
# Anything malformed is False or raises ValueError; both mean "not verified".
SignatureCheck = Callable[[str, bytes, bytes], bool]
KeyFetch = Callable[[], Mapping[str, str]]  # key id -> PEM public key; raises KeyListUnavailable


class SigningKeys:
    """The partner's signing keys, kept in memory. The list is fetched on first use and again
    only for a key id it does not hold, never twice within `refetch_seconds` (someone sending
    made-up key ids cannot make every request a fetch). A fetch that fails keeps what was held;
    one that succeeds replaces it (a key the partner withdrew is no longer trusted)."""

    def __init__(
        self,
        fetch: KeyFetch,
        check: SignatureCheck,
        refetch_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch, self._check, self._refetch_seconds, self._clock = fetch, check, refetch_seconds, clock
        self._keys: dict[str, str] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # how many times the list was asked for (tests, metrics)

    def verifies(self, key_id: str, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is the named key's over `message`; False for an unknown key, an
        unreachable list, or anything malformed (fail closed)."""
        key = self._key(key_id)
        if key is None:
            return False
        try:
            return self._check(key, signature, message) is True
        except ValueError:
            return False

    def _key(self, key_id: str) -> str | None:
        with self._lock:
            if key_id not in self._keys and self._may_fetch():
                self._refresh()
            return self._keys.get(key_id)

    def _may_fetch(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._refetch_seconds

    def _refresh(self) -> None:
        self._fetched_at = self._clock()
        self.fetches += 1
        try:
            keys = dict(self._fetch())
        except KeyListUnavailable:
            return
        self._keys = {str(key_id): str(pem) for key_id, pem in keys.items()}


@dataclass(frozen=True, slots=True)
class ReportedToken:
    """One match of a report: the string found, the partner's name for its pattern, where it was found."""

    token: str
    type: str
    url: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    token_hash: str  # SHA-256 (hex) of the reported string: the answer never repeats the string
    token_type: str
    label: Label  # TRUE_POSITIVE (one of ours, now revoked) or FALSE_POSITIVE


class LeakRevoker(Protocol):
    """What judging a report needs of the token service (TokenService.revoke_leaked_token)."""

    def revoke_leaked_token(self, presented: str, url: str | None, source: str | None) -> bool: ...


def report_hash(token: str) -> str:
    """The SHA-256 of a reported string as the partner hashes it (its UTF-8 bytes)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def judge_report(
    reported: Sequence[ReportedToken], prefix: str, revoker: LeakRevoker, workers: int = LEAK_WORKERS
) -> list[Verdict]:
    """A verdict per reported match, in order. A string that is not a well-formed token of
    `prefix` (prefix, length, alphabet, checksum) is a false positive without any read; each
    distinct well-formed one is checked against its stored hash (and revoked when it matches),
    `workers` at a time. A failed check raises once the others are done: what was revoked stays
    revoked, and the same report sent again finishes the rest (revoking is idempotent)."""
    candidates: dict[str, ReportedToken] = {}
    for item in reported:
        if item.token not in candidates and parse_token(item.token, prefix) is not None:
            candidates[item.token] = item
    found: dict[str, bool] = {}
    if candidates:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(candidates)))) as pool:
            futures: dict[str, Future[bool]] = {
                token: pool.submit(revoker.revoke_leaked_token, token, item.url, item.source)
                for token, item in candidates.items()
            }
        found = {token: future.result() for token, future in futures.items()}
    return [
        Verdict(report_hash(item.token), item.type, TRUE_POSITIVE if found.get(item.token) else FALSE_POSITIVE)
        for item in reported
    ]
