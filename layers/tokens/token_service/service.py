"""Token management: the domain logic behind the console's API."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from token_service.clock import Clock, system_clock
from token_service.config import ServiceConfig
from token_service.errors import (
    ActiveTokenLimitReached,
    ConcurrentModification,
    DomainError,
    InvalidRequest,
    PermissionDenied,
    ScopeNotGrantable,
    TokenNotFound,
)
from token_service.identity import Caller, is_valid_identifier
from token_service.models import BulkRevokeRequest, CreateTokenRequest, Expiry, PolicyUpdate, RevokeResult
from token_service.pagination import decode_cursor, encode_cursor
from token_service.records import (
    ORG_INDEX,
    OWNER_INDEX,
    ActiveSet,
    OrgPolicy,
    Slot,
    TokenRecord,
    org_partition,
    owner_partition,
)
from token_service.repository import ActiveSetChanged, IndexQuery, RevokeOutcome, TokenIdTaken, TokenRepository
from token_service.scopes import Role, ScopeCatalog
from token_service.token_format import ID_LENGTH, generate_token

DAY = 86_400
MAX_CREATE_ATTEMPTS = 40
MAX_QUERY_ROUNDS = 10
SLOT_GRACE_SECONDS = 60  # longer than a create can take (the function times out after 10 s)
BULK_PAGE_SIZE = 1000  # ids only: a full page is a few tens of kilobytes
BULK_REVOKE_WORKERS = 16  # each UpdateItem mostly waits on the network
_TOKEN_ID = re.compile(f"[0-9A-Za-z]{{{ID_LENGTH}}}")

STATUS_FILTERS = {
    "active": "attribute_not_exists(revoked_at) AND expires_at > :now",
    "expired": "attribute_not_exists(revoked_at) AND expires_at <= :now",
    "revoked": "attribute_exists(revoked_at)",
}


@dataclass(frozen=True, slots=True)
class CreatedToken:
    record: TokenRecord
    secret: str


@dataclass(frozen=True, slots=True)
class TokenListing:
    records: list[TokenRecord]
    next_cursor: str | None


RevokeListener = Callable[[list[str]], None]
"""Called with the ids of the tokens a revoke has just revoked (the authorizer cache flush hooks in here)."""


class Revocation(TypedDict):
    """The repository's revoke arguments besides the token id."""

    org_id: str
    owner_id: str | None  # None: any owner in the organisation (admins)
    revoked_at: int
    revoked_by: str
    ttl: int


class TokenService:
    def __init__(
        self,
        repository: TokenRepository,
        catalog: ScopeCatalog,
        config: ServiceConfig,
        clock: Clock = system_clock,
        on_revoked: RevokeListener | None = None,
    ) -> None:
        self.repository = repository
        self.catalog = catalog
        self.config = config
        self.clock = clock
        self.on_revoked = on_revoked

    # -- scopes and policy ----------------------------------------------------------------

    def grantable_scopes(self, caller: Caller) -> list[tuple[str, str]]:
        role = self.catalog.role(caller.role)
        return [(scope, self.catalog.descriptions[scope]) for scope in role.grantable_scopes]

    def get_policy(self, caller: Caller) -> OrgPolicy:
        self.catalog.role(caller.role)
        return self.repository.get_policy(caller.org_id)

    def update_policy(self, caller: Caller, update: PolicyUpdate) -> OrgPolicy:
        self._require_admin(caller, "change the organisation's token policy")
        policy = OrgPolicy(
            max_lifetime_days=update.max_lifetime_days,
            default_lifetime_days=update.default_lifetime_days,
            max_active_tokens_per_user=update.max_active_tokens_per_user,
            updated_at=int(self.clock()),
            updated_by=caller.user_id,
        )
        self.repository.put_policy(caller.org_id, policy)
        return policy

    # -- create ---------------------------------------------------------------------------

    def create_token(self, caller: Caller, request: CreateTokenRequest) -> CreatedToken:
        role = self.catalog.role(caller.role)
        scopes = request.unique_scopes
        unknown = self.catalog.unknown_scopes(scopes)
        if unknown:
            raise InvalidRequest.field("scopes", f"unknown scope(s): {', '.join(unknown)}; see GET /scopes")
        not_grantable = set(scopes) - set(role.grantable_scopes)
        if not_grantable:
            raise ScopeNotGrantable(not_grantable)
        policy = self.repository.get_policy(caller.org_id)
        now = self.clock()
        expires_at = self._resolve_expiry(request.expiry, policy, now)

        for attempt in range(MAX_CREATE_ATTEMPTS):
            active = self.repository.get_active_set(caller.org_id, caller.user_id)
            live = self._live_tokens(active, policy.max_active_tokens_per_user, now)
            generated = generate_token(self.config.token_prefix)
            record = TokenRecord.issue(
                generated,
                org_id=caller.org_id,
                owner_id=caller.user_id,
                name=request.name,
                scopes=tuple(scopes),
                now=now,
                expires_at=expires_at,
                retention_seconds=self.config.retention_days * DAY,
                schedule=self.config.lifecycle,
            )
            live[record.token_id] = Slot(expires_at=expires_at, reserved_at=int(now))
            try:
                self.repository.reserve_slot(
                    caller.org_id, caller.user_id, ActiveSet(tokens=live), read_version=active.version
                )
                self.repository.put_new_token(record)
            except (ActiveSetChanged, TokenIdTaken):
                # Lost a race for the user's active set: back off a little and re-read it.
                time.sleep(secrets.randbelow(10 + 5 * attempt) / 1000)
                continue
            return CreatedToken(record=record, secret=generated.token)
        raise ConcurrentModification()

    def _live_tokens(self, active: ActiveSet, cap: int, now: float) -> dict[str, Slot]:
        live = {token_id: slot for token_id, slot in active.tokens.items() if slot.expires_at > now}
        if len(live) >= cap:
            # Revoked tokens leave the set lazily: only look them up when the cap is reached.
            revoked, missing = self.repository.revoked_or_missing(sorted(live))
            # A slot without a token is a create still writing it, or one that failed after
            # taking the slot; only the latter, once its grace period is over, frees it.
            abandoned = {token_id for token_id in missing if live[token_id].reserved_at < now - SLOT_GRACE_SECONDS}
            for token_id in revoked | abandoned:
                live.pop(token_id)
            if len(live) >= cap:
                raise ActiveTokenLimitReached(cap)
        return live

    @staticmethod
    def _resolve_expiry(expiry: Expiry | None, policy: OrgPolicy, now: float) -> int:
        if expiry is None:
            return int(now) + policy.default_lifetime_days * DAY
        if expiry.epoch <= now:
            raise InvalidRequest.field("expires_at", "must be in the future")
        limit = datetime.fromtimestamp(now + policy.max_lifetime_days * DAY, UTC)
        within = expiry.at.date() <= limit.date() if expiry.is_date else expiry.at <= limit
        if not within:
            raise InvalidRequest.field(
                "expires_at",
                f"must be no more than {policy.max_lifetime_days} days ahead "
                f"(on or before {limit.date().isoformat()}), the organisation's maximum lifetime",
            )
        return expiry.epoch

    # -- read -----------------------------------------------------------------------------

    def get_token(self, caller: Caller, token_id: str) -> TokenRecord:
        role = self.catalog.role(caller.role)
        record = self.repository.get_token(token_id) if _TOKEN_ID.fullmatch(token_id) else None
        if record is None or not self._may_see(caller, role, record):
            raise TokenNotFound()
        return record

    def list_tokens(
        self,
        caller: Caller,
        *,
        limit: int,
        cursor: str | None = None,
        status: str | None = None,
        owner_id: str | None = None,
        all_users: bool = False,
    ) -> TokenListing:
        index, attribute, partition = self._listing_partition(caller, owner_id, all_users)
        start_key = decode_cursor(cursor, attribute, partition)
        filter_expression = STATUS_FILTERS.get(status) if status else None
        filter_values = {":now": int(self.clock())} if filter_expression and ":now" in filter_expression else None
        records: list[TokenRecord] = []
        # Without a filter one Query reads exactly `limit` items. With one, DynamoDB's Limit counts
        # items read, not matched, so keep reading, for a bounded number of rounds.
        for _ in range(MAX_QUERY_ROUNDS):
            page = self.repository.query_tokens(
                IndexQuery(
                    index, attribute, partition, limit - len(records), start_key, filter_expression, filter_values
                )
            )
            records.extend(page.records)
            start_key = page.last_key
            if len(records) >= limit or start_key is None:
                break
        return TokenListing(records=records, next_cursor=encode_cursor(start_key))

    def _listing_partition(self, caller: Caller, owner_id: str | None, all_users: bool) -> tuple[str, str, str]:
        role = self.catalog.role(caller.role)
        if all_users:
            if owner_id is not None:
                raise InvalidRequest.field("owner_id", "cannot be combined with all_users")
            self._require_admin(caller, "list the organisation's tokens", role)
            return ORG_INDEX, "gsi2pk", org_partition(caller.org_id)
        owner = owner_id if owner_id is not None else caller.user_id
        if not is_valid_identifier(owner):
            raise InvalidRequest.field("owner_id", "is not a valid user id")
        if owner != caller.user_id:
            self._require_admin(caller, "list another user's tokens", role)
        return OWNER_INDEX, "gsi1pk", owner_partition(caller.org_id, owner)

    # -- revoke ---------------------------------------------------------------------------

    def revoke_token(self, caller: Caller, token_id: str) -> RevokeOutcome:
        role = self.catalog.role(caller.role)
        outcome = self._revoke(caller, role, token_id)
        if outcome.newly_revoked:
            self._notify_revoked([token_id])
        return outcome

    def bulk_revoke(self, caller: Caller, request: BulkRevokeRequest) -> list[tuple[str, RevokeResult]]:
        """Revokes a list of ids, one user's active tokens or the organisation's.

        Every step is an idempotent conditional update, so a run that fails half-way
        (throttling, a timeout) can simply be repeated: it finishes what is left.
        """
        role = self.catalog.role(caller.role)
        ids: Iterable[str]
        if request.token_ids is not None:
            ids = request.token_ids
        elif request.owner_id is not None:
            if not is_valid_identifier(request.owner_id):
                raise InvalidRequest.field("owner_id", "is not a valid user id")
            if request.owner_id != caller.user_id:
                self._require_admin(caller, "revoke another user's tokens", role)
            ids = self._active_ids(OWNER_INDEX, "gsi1pk", owner_partition(caller.org_id, request.owner_id))
        else:
            self._require_admin(caller, "revoke the organisation's tokens", role)
            ids = self._active_ids(ORG_INDEX, "gsi2pk", org_partition(caller.org_id))

        futures: dict[str, Future[RevokeResult]] = {}  # in request (or listing) order
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=BULK_REVOKE_WORKERS) as pool:
            try:
                # The workers start on the first page of ids while the next is being read.
                for token_id in ids:
                    if token_id not in futures:
                        futures[token_id] = pool.submit(self._try_revoke, caller, role, token_id)
            except Exception as error:  # a failed page: still flush what the workers revoked
                failure = error
            results: list[tuple[str, RevokeResult]] = []
            for token_id, future in futures.items():
                try:
                    results.append((token_id, future.result()))
                except DomainError as error:
                    failure = failure or error
        # Flush for what was revoked even when some updates failed: those tokens are revoked
        # in the table, and their cached policies must not outlive that.
        revoked = [token_id for token_id, result in results if result == "revoked"]
        if revoked:
            self._notify_revoked(revoked)
        if failure is not None:
            raise failure
        return results

    def _active_ids(self, index: str, attribute: str, partition: str) -> Iterator[str]:
        start_key: dict[str, str] | None = None
        values = {":now": int(self.clock())}
        while True:
            page = self.repository.query_token_ids(
                IndexQuery(index, attribute, partition, BULK_PAGE_SIZE, start_key, STATUS_FILTERS["active"], values)
            )
            yield from page.token_ids
            start_key = page.last_key
            if start_key is None:
                return

    # -- the presented token (self-service endpoints behind the token authorizer) -----------

    def get_presented_token(self, token_id: str, org_id: str) -> TokenRecord:
        record = self.repository.get_token(token_id) if _TOKEN_ID.fullmatch(token_id) else None
        if record is None or record.org_id != org_id:
            raise TokenNotFound()
        return record

    def revoke_presented_token(self, token_id: str, org_id: str, owner_id: str) -> RevokeOutcome:
        """A token revoking itself, e.g. after it leaked."""
        if not _TOKEN_ID.fullmatch(token_id):
            raise TokenNotFound()
        now = int(self.clock())
        outcome = self.repository.revoke(
            token_id,
            org_id=org_id,
            owner_id=owner_id,
            revoked_at=now,
            revoked_by=f"token:{token_id}",
            ttl=now + self.config.retention_days * DAY,
        )
        if outcome.newly_revoked:
            self._notify_revoked([token_id])
        return outcome

    def _try_revoke(self, caller: Caller, role: Role, token_id: str) -> RevokeResult:
        if not _TOKEN_ID.fullmatch(token_id):
            return "not_found"
        try:
            newly_revoked = self.repository.revoke_quietly(token_id, **self._revocation(caller, role))
        except TokenNotFound:
            return "not_found"
        return "revoked" if newly_revoked else "already_revoked"

    def _revoke(self, caller: Caller, role: Role, token_id: str) -> RevokeOutcome:
        if not _TOKEN_ID.fullmatch(token_id):
            raise TokenNotFound()
        return self.repository.revoke(token_id, **self._revocation(caller, role))

    def _revocation(self, caller: Caller, role: Role) -> Revocation:
        """Who may be revoked (admins: the organisation's tokens; others: their own), by whom, when."""
        now = int(self.clock())
        return {
            "org_id": caller.org_id,
            "owner_id": None if role.organisation_admin else caller.user_id,
            "revoked_at": now,
            "revoked_by": caller.user_id,
            "ttl": now + self.config.retention_days * DAY,
        }

    def _notify_revoked(self, token_ids: list[str]) -> None:
        if self.on_revoked is not None:
            self.on_revoked(token_ids)

    # -- access rules ---------------------------------------------------------------------

    @staticmethod
    def _may_see(caller: Caller, role: Role, record: TokenRecord) -> bool:
        if record.org_id != caller.org_id:
            return False
        return role.organisation_admin or record.owner_id == caller.user_id

    def _require_admin(self, caller: Caller, action: str, role: Role | None = None) -> None:
        role = role or self.catalog.role(caller.role)
        if not role.organisation_admin:
            raise PermissionDenied(f"Only organisation admins can {action}.")
