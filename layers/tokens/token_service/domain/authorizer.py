"""The token check behind the API Gateway Lambda authorizer: a header and a route -> a decision.

On the path of every API request: standard library only (no pydantic, no AWS SDK here).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from token_service.domain.clock import Clock, system_clock
from token_service.domain.errors import DomainError
from token_service.domain.records import TokenGrant
from token_service.domain.routes import ProtectedRoute, find_route
from token_service.domain.token_format import HASH_VERSION, matches_hash, parse_token

LAST_USED_INTERVAL_SECONDS = 600  # as GitLab: at most one last-use write per token per 10 minutes
_MAX_HEADER_LENGTH = 512


class Reason(StrEnum):
    ALLOWED = "allowed"
    MISSING = "missing_credentials"
    MALFORMED = "malformed_token"
    UNKNOWN = "unknown_token"
    WRONG_SECRET = "wrong_secret"  # noqa: S105 (a reason code)
    REVOKED = "revoked"
    DISABLED = "disabled"
    EXPIRED = "expired"
    UNUSED = "unused_too_long"  # the organisation revokes tokens unused for its set number of days
    EXPIRES_WITHIN_CACHE = "expires_within_cache_time"  # an allow cached now would outlive the token
    # The token has an address allowlist and the request's source address (none in TOKEN
    # events) is outside it: a 403, as for a missing scope (the token is valid, not for this).
    IP_NOT_ALLOWED = "ip_not_allowed"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    UNMAPPED_ROUTE = "unmapped_route"
    UNAVAILABLE = "store_unavailable"


UNAUTHENTICATED = frozenset(
    {
        Reason.MISSING,
        Reason.MALFORMED,
        Reason.UNKNOWN,
        Reason.WRONG_SECRET,
        Reason.REVOKED,
        Reason.DISABLED,
        Reason.EXPIRED,
        Reason.UNUSED,
        Reason.EXPIRES_WITHIN_CACHE,
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    reason: Reason
    token_id: str | None = None
    record: TokenGrant | None = None
    allowed_routes: tuple[ProtectedRoute, ...] = ()
    route: ProtectedRoute | None = None  # the route of the request, if the map has it
    last_use_not_recorded: bool = False  # the best-effort last-use write failed

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.ALLOWED


# Shared answers (Decision is immutable) for the requests rejected before any read.
_MISSING = Decision(Reason.MISSING)
_MALFORMED = Decision(Reason.MALFORMED)


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not header or len(header) > _MAX_HEADER_LENGTH:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

# ipaddress is imported on the first token with an allowlist: most tokens have none, and every
# cold start would pay for the module otherwise.


@lru_cache(maxsize=1024)  # a token's list, parsed once per container
def _networks(cidrs: tuple[str, ...]) -> tuple[IPv4Network | IPv6Network, ...]:
    from ipaddress import ip_network

    networks = []
    for cidr in cidrs:
        try:
            networks.append(ip_network(cidr, strict=False))
        except ValueError:
            continue  # an entry that is not a network admits nobody (fail closed)
    return tuple(networks)


def address_allowed(cidrs: tuple[str, ...], source_ip: str | None) -> bool:
    """Whether the request's source address is inside one of the token's networks. No address
    (TOKEN events carry none) or one that does not parse: refused. An IPv4-mapped IPv6 address
    (::ffff:203.0.113.7) is also checked as the IPv4 address it stands for."""
    if not isinstance(source_ip, str):
        return False
    from ipaddress import IPv6Address, ip_address

    try:
        address: IPv4Address | IPv6Address = ip_address(source_ip)
    except ValueError:
        return False
    candidates: list[IPv4Address | IPv6Address] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate in network
        for network in _networks(cidrs)
        for candidate in candidates
        if candidate.version == network.version
    )


class TokenReader(Protocol):
    """What the authorizer needs of storage (token_service.storage.repository.TokenRepository)."""

    def get_grant(self, token_id: str) -> TokenGrant | None: ...
    def record_use(self, token_id: str, used_at: int, source_ip: str | None, not_since: int) -> None: ...


@dataclass(slots=True)
class TokenAuthorizer:
    repository: TokenReader
    routes: tuple[ProtectedRoute, ...]
    token_prefix: str
    clock: Clock = system_clock
    # How long API Gateway may answer from a decision without asking again: a token that
    # expires within it is refused now, so no cached allow outlives its expiry.
    cache_seconds: int = 0

    def decide(self, authorization: str | None, method: str, path: str, source_ip: str | None = None) -> Decision:
        token = bearer_token(authorization)
        if token is None:
            return _MISSING
        parsed = parse_token(token, self.token_prefix)
        if parsed is None:
            return _MALFORMED  # rejected offline: no database read
        try:
            record = self.repository.get_grant(parsed.token_id)
        except DomainError:
            return Decision(Reason.UNAVAILABLE, parsed.token_id)
        if record is None:
            return Decision(Reason.UNKNOWN, parsed.token_id)
        if record.hash_version != HASH_VERSION or not matches_hash(parsed, record.secret_hash):
            return Decision(Reason.WRONG_SECRET, parsed.token_id)
        now = self.clock()
        if record.revoked_at is not None:
            return Decision(Reason.REVOKED, record.token_id, record)
        if record.expires_at <= now:  # by the item's own expiry: TTL deletion lags by days
            return Decision(Reason.EXPIRED, record.token_id, record)
        if record.expires_at <= now + self.cache_seconds:
            return Decision(Reason.EXPIRES_WITHIN_CACHE, record.token_id, record)
        if record.disabled_at is not None:
            return Decision(Reason.DISABLED, record.token_id, record)
        unused_until = record.unused_until()
        if unused_until is not None and unused_until <= now:  # this request would be a use: it is too late
            return Decision(Reason.UNUSED, record.token_id, record)
        if record.allowed_cidrs and not address_allowed(record.allowed_cidrs, source_ip):
            # No route allowed (a TOKEN policy lists none), and not a use: a request from an
            # address the token is not for neither records the address nor keeps it alive.
            return Decision(Reason.IP_NOT_ALLOWED, record.token_id, record)
        recorded = self._record_use(record, now, source_ip)
        scopes = frozenset(record.scopes)
        allowed_routes = tuple(route for route in self.routes if route.allows(scopes))
        route = find_route(self.routes, method, path)
        if route is None:
            reason = Reason.UNMAPPED_ROUTE
        elif route in allowed_routes:
            reason = Reason.ALLOWED
        else:
            reason = Reason.INSUFFICIENT_SCOPE
        return Decision(reason, record.token_id, record, allowed_routes, route, last_use_not_recorded=not recorded)

    def _record_use(self, record: TokenGrant, now: float, source_ip: str | None) -> bool:
        """Best effort: a failure here never changes the decision. Returns False if the write failed."""
        if record.last_used_at is not None and now - record.last_used_at < LAST_USED_INTERVAL_SECONDS:
            return True  # fresh enough: no second round trip
        try:
            self.repository.record_use(
                record.token_id, int(now), source_ip, not_since=int(now) - LAST_USED_INTERVAL_SECONDS
            )
        except DomainError:
            return False
        return True
