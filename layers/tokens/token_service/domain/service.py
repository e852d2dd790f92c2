"""Token management: the domain logic behind the console's API and the self-service routes."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Protocol, TypedDict

from token_service.domain.audit import (
    AuditAction,
    AuditEntry,
    AuditQuery,
    AuditRecord,
    AuditTrail,
    ChainCheck,
    verify_chain,
)
from token_service.domain.clock import Clock, system_clock, to_iso
from token_service.domain.commands import (
    ApiStage,
    BulkSelection,
    CreatedToken,
    Expiry,
    Listing,
    NewToken,
    PageKey,
    PolicyChange,
    RevokeOutcome,
    RevokeResult,
    RotatedToken,
    Rotation,
    TokenPage,
)
from token_service.domain.errors import (
    ActiveSetChanged,
    ActiveTokenLimitReached,
    ConcurrentModification,
    DomainError,
    InvalidRequest,
    PermissionDenied,
    ScopeNotGrantable,
    TokenAlreadyRotated,
    TokenIdTaken,
    TokenNotFound,
    TokenNotLive,
    UnknownScopes,
)
from token_service.domain.events import (
    EventSink,
    TokenEvent,
    bulk_revoked_details,
    token_detail,
)
from token_service.domain.identity import Caller, is_valid_identifier
from token_service.domain.lifecycle import DAY, EXPIRED, PURGE, Schedule
from token_service.domain.membership import Member
from token_service.domain.records import ActiveSet, OrgPolicy, Slot, TokenRecord
from token_service.domain.scopes import Role, ScopeCatalog
from token_service.domain.token_format import HASH_VERSION, ID_LENGTH, generate_token, matches_hash, parse_token

MAX_CREATE_ATTEMPTS = 40
SLOT_GRACE_SECONDS = 60  # longer than a create can take (the function times out after 10 s)
BULK_REVOKE_WORKERS = 16  # each update mostly waits on the network
_TOKEN_ID = re.compile(f"[0-9A-Za-z]{{{ID_LENGTH}}}")


class Revocation(TypedDict):
    """The store's revoke arguments besides the token id."""

    org_id: str
    owner_id: str | None  # None: any owner in the organisation (admins)
    revoked_at: int
    revoked_by: str
    ttl: int


class TokenStore(Protocol):
    """What the service needs of storage (token_service.storage.repository.TokenRepository)."""

    def get_token(self, token_id: str) -> TokenRecord | None: ...
    def get_active_set(self, org_id: str, owner_id: str) -> ActiveSet: ...
    def reserve_slot(self, org_id: str, owner_id: str, active: ActiveSet, read_version: int) -> None: ...
    def put_new_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None: ...
    def revoked_or_missing(self, token_ids: list[str]) -> tuple[set[str], set[str]]: ...
    def list_tokens(
        self, listing: Listing, limit: int, start_key: PageKey | None, status: str | None, now: int
    ) -> TokenPage: ...
    def live_token_ids(self, listing: Listing, now: int) -> Iterator[str]: ...
    def revoke(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        audit: AuditEntry | None = None,
    ) -> RevokeOutcome: ...
    def revoke_quietly(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        audit: AuditEntry | None = None,
    ) -> bool: ...
    def set_disabled(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        disabled_at: int,
        disabled_by: str,
        audit: AuditEntry | None = None,
    ) -> tuple[TokenRecord, bool]: ...
    def set_enabled(
        self, token_id: str, org_id: str, owner_id: str | None, now: int, audit: AuditEntry | None = None
    ) -> tuple[TokenRecord, bool]: ...
    def mark_rotated(
        self, old: TokenRecord, successor: str, expires_at: int, stage: tuple[str, int], ttl: int
    ) -> None: ...
    def stamp_unused_policy(self, token_id: str, days: int | None) -> None: ...
    def get_policy(self, org_id: str) -> OrgPolicy: ...
    def put_policy(self, org_id: str, policy: OrgPolicy, audit: AuditEntry | None = None) -> None: ...
    def register_unused_policy(self, org_id: str, days: int | None) -> None: ...
    def set_scopes(
        self, token_id: str, org_id: str, scopes: tuple[str, ...], audit: AuditEntry | None = None
    ) -> bool: ...
    def remember_member(self, member: Member, *, replace: bool) -> None: ...
    def forget_member(self, org_id: str, user_id: str) -> None: ...


class CacheFlusher(Protocol):
    """Drops the authorizer's cached answers on API stages (token_service.storage.cache_flush)."""

    def flush(self, stages: Sequence[ApiStage]) -> list[ApiStage]:
        """Flushes now, never failing the revoke; returns the stages whose flush failed."""
        ...

    def flush_later(self, stages: Sequence[ApiStage], delay_seconds: int) -> None:
        """Queues a flush, retried until it succeeds (or lands where an operator sees it)."""
        ...


@dataclass(frozen=True, slots=True)
class TokenSettings:
    token_prefix: str
    retention_days: int
    schedule: Schedule
    flush_stages: tuple[ApiStage, ...] = ()  # every revoke flushes these stages' authorizer caches
    # The authorizer's timeout: no check that read a token before its revoke can still be
    # running, nor cache its answer, after this long.
    second_flush_delay: int = 5

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * DAY


@dataclass(slots=True)
class TokenService:
    repository: TokenStore
    catalog: ScopeCatalog
    settings: TokenSettings
    clock: Clock = system_clock
    flush_caches: CacheFlusher | None = None
    events: EventSink | None = None  # lifecycle events; a failed publish never fails the change
    audit: AuditTrail | None = None  # chains each change's audit entry right after the change

    # -- scopes and policy ----------------------------------------------------------------

    def get_policy(self, caller: Caller) -> OrgPolicy:
        self.catalog.role(caller.role)
        return self.repository.get_policy(caller.org_id)

    def update_policy(self, caller: Caller, change: PolicyChange) -> OrgPolicy:
        self._require_admin(caller, "change the organisation's token policy")
        previous = self.repository.get_policy(caller.org_id)
        now = int(self.clock())
        policy = OrgPolicy(
            max_lifetime_days=change.max_lifetime_days,
            default_lifetime_days=change.default_lifetime_days,
            max_active_tokens_per_user=change.max_active_tokens_per_user,
            revoke_unused_after_days=change.revoke_unused_after_days,
            updated_at=now,
            updated_by=caller.user_id,
        )
        days = policy.revoke_unused_after_days
        changed = days != previous.revoke_unused_after_days
        # The cleanup finds organisations by this registry and checks each one's policy item, so
        # a registration without its policy (a failure between the two) is harmless.
        if changed and days is not None:
            self.repository.register_unused_policy(caller.org_id, days)
        action, settings = AuditAction.POLICY_CHANGED, asdict(change)
        entry = self._entry(caller.org_id, action, caller.user_id, "policy", caller=caller, **settings)
        self.repository.put_policy(caller.org_id, policy, entry)
        self._chain(entry)
        if changed:
            self._stamp_unused_policy(caller.org_id, days, now)
        return policy

    def _stamp_unused_policy(self, org_id: str, days: int | None, now: int) -> None:
        """Copies the unused-token policy onto every live token of the organisation, where the
        authorizer applies it without another read, and drops answers cached under the old one.
        (Tokens created meanwhile with the old value are corrected by the next cleanup run.)"""
        ids = list(self.repository.live_token_ids(Listing(org_id, None), now))
        with ThreadPoolExecutor(max_workers=BULK_REVOKE_WORKERS) as pool:
            list(pool.map(lambda token_id: self.repository.stamp_unused_policy(token_id, days), ids))
        self._flush(ids)

    # -- create ---------------------------------------------------------------------------

    def create_token(self, caller: Caller, request: NewToken) -> CreatedToken:
        role = self.catalog.role(caller.role)
        unknown = self.catalog.unknown_scopes(list(request.scopes))
        if unknown:
            raise UnknownScopes(unknown)
        not_grantable = set(request.scopes) - set(role.grantable_scopes)
        if not_grantable:
            raise ScopeNotGrantable(not_grantable)
        policy = self.repository.get_policy(caller.org_id)
        now = self.clock()
        expires_at = self._resolve_expiry(request.expiry, policy, now)
        # Remember the owner first, so membership changes reach every token they will hold (a
        # failure here leaves nothing half-done; after the token's write it would lose the secret).
        self.repository.remember_member(Member(caller.org_id, caller.user_id, caller.role), replace=False)
        created = self._mint(
            caller.org_id,
            caller.user_id,
            request.name,
            request.scopes,
            expires_at,
            policy,
            now,
            caller.user_id,
            allowed_cidrs=request.allowed_cidrs,
            audited=(AuditAction.CREATED, caller.source_ip),
        )
        self._announce(
            TokenEvent.CREATED, token_detail(created.record, caller.user_id) | {"scopes": list(request.scopes)}
        )
        return created

    def _mint(
        self,
        org_id: str,
        owner_id: str,
        name: str,
        scopes: tuple[str, ...],
        expires_at: int,
        policy: OrgPolicy,
        now: float,
        created_by: str,
        replacing: tuple[TokenRecord, int] | None = None,
        allowed_cidrs: tuple[str, ...] = (),
        audited: tuple[AuditAction, str | None] = (AuditAction.CREATED, None),
    ) -> CreatedToken:
        """Takes a slot in the owner's active set, then writes the token with its audit entry
        (`audited`: the action and the caller's address). `replacing`: the token being rotated
        and its new expiry, to which its slot shrinks in the same write."""
        for attempt in range(MAX_CREATE_ATTEMPTS):
            active = self.repository.get_active_set(org_id, owner_id)
            slots = dict(active.tokens)
            if replacing is not None:
                old, old_expires_at = replacing
                reserved_at = slots[old.token_id].reserved_at if old.token_id in slots else old.created_at
                slots[old.token_id] = Slot(expires_at=old_expires_at, reserved_at=reserved_at)
            live = self._live_tokens(ActiveSet(tokens=slots), policy.max_active_tokens_per_user, now)
            generated = generate_token(self.settings.token_prefix)
            record = TokenRecord.issue(
                generated,
                org_id=org_id,
                owner_id=owner_id,
                name=name,
                scopes=scopes,
                now=now,
                expires_at=expires_at,
                retention_seconds=self.settings.retention_seconds,
                schedule=self.settings.schedule,
                created_by=created_by,
                rotated_from=replacing[0].token_id if replacing else None,
                unused_after_days=policy.revoke_unused_after_days,
                allowed_cidrs=allowed_cidrs,
            )
            live[record.token_id] = Slot(expires_at=expires_at, reserved_at=int(now))
            action, source_ip = audited
            replaced = replacing[0].token_id if replacing else None
            entry = self._entry(
                org_id,
                action,
                created_by,
                record.token_id,
                (replaced, record.token_id) if replaced else (record.token_id,),
                source_ip=source_ip,
                name=name,
                scopes=list(scopes),
                expires_at=to_iso(expires_at),
                allowed_cidrs=list(allowed_cidrs) or None,
            )
            try:
                self.repository.reserve_slot(org_id, owner_id, ActiveSet(tokens=live), active.version)
                self.repository.put_new_token(record, entry)
            except (ActiveSetChanged, TokenIdTaken):
                # Lost a race for the user's active set: back off a little and re-read it.
                time.sleep(secrets.randbelow(10 + 5 * attempt) / 1000)
                continue
            self._chain(entry)
            return CreatedToken(record=record, secret=generated.token)
        raise ConcurrentModification()

    # -- rotate ---------------------------------------------------------------------------

    def rotate_token(self, caller: Caller, token_id: str, rotation: Rotation) -> RotatedToken:
        """Who may rotate a token is who may revoke it: its owner, or an admin of its organisation."""
        return self._rotate(self.get_token(caller, token_id), rotation, caller.user_id, source_ip=caller.source_ip)

    def rotate_presented_token(
        self,
        token_id: str,
        org_id: str,
        owner_id: str,
        rotation: Rotation,
        served_by: ApiStage | None = None,
        source_ip: str | None = None,
    ) -> RotatedToken:
        """A token replacing itself (a pipeline rotating its own credential)."""
        old = self.get_presented_token(token_id, org_id)
        if old.owner_id != owner_id:
            raise TokenNotFound()
        return self._rotate(old, rotation, f"token:{token_id}", served_by, source_ip)

    def _rotate(
        self,
        old: TokenRecord,
        rotation: Rotation,
        actor: str,
        served_by: ApiStage | None = None,
        source_ip: str | None = None,
    ) -> RotatedToken:
        """A new token with the old one's name, scopes and owner; the old one then expires at the
        earlier of its own expiry and the end of the grace period."""
        now = self.clock()
        if old.rotated_to is not None:
            raise TokenAlreadyRotated(old.token_id, old.rotated_to)
        status = old.status(now)
        if status != "active":
            raise TokenNotLive(old.token_id, status, "rotated")
        policy = self.repository.get_policy(old.org_id)
        expires_at = self._resolve_expiry(rotation.expiry, policy, now)
        old_expires_at = min(old.expires_at, int(now) + rotation.grace_seconds)
        created = self._mint(  # the successor keeps the old token's address allowlist
            old.org_id,
            old.owner_id,
            old.name,
            old.scopes,
            expires_at,
            policy,
            now,
            actor,
            (old, old_expires_at),
            allowed_cidrs=old.allowed_cidrs,
            audited=(AuditAction.ROTATED, source_ip),
        )
        successor = created.record.token_id
        # A rotated token gets no expiry notices: it expires (or purges) on the shortened schedule.
        ttl = old_expires_at + self.settings.retention_seconds
        stage = (EXPIRED, old_expires_at) if old_expires_at > now else (PURGE, ttl)
        try:
            self.repository.mark_rotated(old, successor, old_expires_at, stage, ttl)
        except ConcurrentModification:
            # Rotated, revoked or disabled meanwhile: the new token must not outlive the refusal.
            by, at = "rotation:superseded", int(now)
            entry = self._entry(old.org_id, AuditAction.REVOKED, by, successor, at=at, kind="superseded")
            ttl = at + self.settings.retention_seconds
            if self.repository.revoke_quietly(successor, old.org_id, None, at, by, ttl, audit=entry):
                self._chain(entry)
            current = self.repository.get_token(old.token_id)
            if current is not None and current.rotated_to is not None:
                raise TokenAlreadyRotated(old.token_id, current.rotated_to) from None
            if current is not None and current.status(now) != "active":
                raise TokenNotLive(old.token_id, current.status(now), "rotated") from None
            raise
        replaced = replace(old, rotated_to=successor, expires_at=old_expires_at, ttl=ttl)
        # Answers cached for the old token may outlive its shortened life.
        self._flush([old.token_id], served_by)
        self._announce(
            TokenEvent.ROTATED,
            token_detail(replaced, actor) | {"successor_id": successor, "successor_expires_at": to_iso(expires_at)},
        )
        return RotatedToken(created=created, replaced=replaced)

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
        start_key: PageKey | None = None,
        status: str | None = None,
        owner_id: str | None = None,
        all_users: bool = False,
    ) -> TokenPage:
        listing = self._listing(caller, owner_id, all_users)
        return self.repository.list_tokens(listing, limit, start_key, status, int(self.clock()))

    def _listing(self, caller: Caller, owner_id: str | None, all_users: bool) -> Listing:
        role = self.catalog.role(caller.role)
        if all_users:
            self._require_admin(caller, "list the organisation's tokens", role)
            return Listing(caller.org_id, None)
        owner = owner_id if owner_id is not None else caller.user_id
        self._check_user_id(owner)
        if owner != caller.user_id:
            self._require_admin(caller, "list another user's tokens", role)
        return Listing(caller.org_id, owner)

    # -- revoke ---------------------------------------------------------------------------

    def revoke_token(self, caller: Caller, token_id: str) -> RevokeOutcome:
        role = self.catalog.role(caller.role)
        if not _TOKEN_ID.fullmatch(token_id):
            raise TokenNotFound()
        entry = self._entry(caller.org_id, AuditAction.REVOKED, caller.user_id, token_id, caller=caller, kind="single")
        outcome = self.repository.revoke(token_id, **self._revocation(caller, role), audit=entry)
        if outcome.newly_revoked:
            self._chain(entry)
            self._flush([token_id])
            self._announce(TokenEvent.REVOKED, token_detail(outcome.record, caller.user_id) | {"kind": "single"})
        return outcome

    def bulk_revoke(self, caller: Caller, selection: BulkSelection) -> list[tuple[str, RevokeResult]]:
        """Revokes a list of ids, one user's active tokens or the organisation's.

        Every step is an idempotent conditional update, so a run that fails half-way
        (throttling, a timeout) can simply be repeated: it finishes what is left.
        """
        role = self.catalog.role(caller.role)
        ids: Iterable[str]
        if selection.token_ids is not None:
            ids = selection.token_ids
        elif selection.owner_id is not None:
            self._check_user_id(selection.owner_id)
            if selection.owner_id != caller.user_id:
                self._require_admin(caller, "revoke another user's tokens", role)
            ids = self.repository.live_token_ids(Listing(caller.org_id, selection.owner_id), int(self.clock()))
        else:
            self._require_admin(caller, "revoke the organisation's tokens", role)
            ids = self.repository.live_token_ids(Listing(caller.org_id, None), int(self.clock()))

        futures: dict[str, Future[tuple[RevokeResult, AuditEntry]]] = {}  # in request (or listing) order
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
            entries: list[AuditEntry] = []
            for token_id, future in futures.items():
                try:
                    result, entry = future.result()
                except DomainError as error:
                    failure = failure or error
                    continue
                results.append((token_id, result))
                if result == "revoked":
                    entries.append(entry)
        self._chain(*entries)
        # Flush for what was revoked even when some updates failed: those tokens are revoked
        # in the table, and their cached policies must not outlive that.
        revoked = [token_id for token_id, result in results if result == "revoked"]
        if revoked:
            self._flush(revoked)
            for detail in bulk_revoked_details(caller.org_id, caller.user_id, revoked):
                self._announce(TokenEvent.REVOKED, detail)
        if failure is not None:
            raise failure
        return results

    # -- the presented token (self-service routes behind the token authorizer) --------------

    def get_presented_token(self, token_id: str, org_id: str) -> TokenRecord:
        record = self.repository.get_token(token_id) if _TOKEN_ID.fullmatch(token_id) else None
        if record is None or record.org_id != org_id:
            raise TokenNotFound()
        return record

    def revoke_presented_token(
        self,
        token_id: str,
        org_id: str,
        owner_id: str,
        served_by: ApiStage | None = None,
        source_ip: str | None = None,
    ) -> RevokeOutcome:
        """A token revoking itself, e.g. after it leaked. The stage that served the request
        (`served_by`) cached the token's policy too, so it is flushed with the configured ones."""
        if not _TOKEN_ID.fullmatch(token_id):
            raise TokenNotFound()
        now = int(self.clock())
        actor = f"token:{token_id}"
        entry = self._entry(org_id, AuditAction.REVOKED, actor, token_id, source_ip=source_ip, at=now, kind="self")
        outcome = self.repository.revoke(
            token_id,
            org_id=org_id,
            owner_id=owner_id,
            revoked_at=now,
            revoked_by=actor,
            ttl=now + self.settings.retention_seconds,
            audit=entry,
        )
        if outcome.newly_revoked:
            self._chain(entry)
            self._flush([token_id], served_by)
            self._announce(TokenEvent.REVOKED, token_detail(outcome.record, f"token:{token_id}") | {"kind": "self"})
        return outcome

    # -- leak reports ---------------------------------------------------------------------

    def revoke_leaked_token(self, presented: str, url: str | None, source: str | None) -> bool:
        """A token found in public (a secret-scanning report): checked offline (prefix,
        checksum), then against its stored hash. True: it is one of ours (a true positive); it
        is then revoked by "leak:<source>" (caches flushed) unless it already was, and
        announced as TokenLeaked with where it was found. Repeating a report changes nothing."""
        parsed = parse_token(presented, self.settings.token_prefix)
        record = self.repository.get_token(parsed.token_id) if parsed is not None else None
        if parsed is None or record is None:
            return False
        if record.hash_version != HASH_VERSION or not matches_hash(parsed, record.secret_hash):
            return False
        if record.revoked_at is not None:
            return True
        now = int(self.clock())
        by, ttl = f"leak:{source or 'report'}", now + self.settings.retention_seconds
        entry = self._entry(record.org_id, AuditAction.REVOKED, by, record.token_id, at=now, kind="leak", url=url)
        if self.repository.revoke_quietly(record.token_id, record.org_id, None, now, by, ttl, audit=entry):
            self._chain(entry)
            self._flush([record.token_id])
            detail = token_detail(record, by) | {"url": url, "source": source}
            self._announce(TokenEvent.LEAKED, detail)
            self._announce(TokenEvent.REVOKED, token_detail(record, by) | {"kind": "leak"})
        return True

    # -- disable and enable -----------------------------------------------------------------

    def set_enabled(self, caller: Caller, token_id: str, enabled: bool) -> TokenRecord:
        """Disables a token (refused by the authorizer, through every cache, until enabled) or
        enables it again; idempotent. Who may is who may revoke it."""
        role = self.catalog.role(caller.role)
        if not _TOKEN_ID.fullmatch(token_id):
            raise TokenNotFound()
        now = int(self.clock())
        owner_id = None if role.organisation_admin else caller.user_id
        action = AuditAction.ENABLED if enabled else AuditAction.DISABLED
        entry = self._entry(caller.org_id, action, caller.user_id, token_id, caller=caller, at=now)
        if enabled:
            record, changed = self.repository.set_enabled(token_id, caller.org_id, owner_id, now, entry)
        else:
            record, changed = self.repository.set_disabled(
                token_id, caller.org_id, owner_id, now, caller.user_id, entry
            )
        if not changed:
            status = record.status(now)
            if status in ("revoked", "expired"):
                raise TokenNotLive(token_id, status, "enabled" if enabled else "disabled")
            if (status == "active") != enabled:  # the condition failed for a reason the item does not show
                raise ConcurrentModification()
            return record
        self._chain(entry)
        # Disabling: drop cached allows. Enabling: drop cached refusals, so it works at once too.
        self._flush([token_id])
        self._announce(TokenEvent.ENABLED if enabled else TokenEvent.DISABLED, token_detail(record, caller.user_id))
        return record

    def _try_revoke(self, caller: Caller, role: Role, token_id: str) -> tuple[RevokeResult, AuditEntry]:
        entry = self._entry(caller.org_id, AuditAction.REVOKED, caller.user_id, token_id, caller=caller, kind="bulk")
        if not _TOKEN_ID.fullmatch(token_id):
            return "not_found", entry
        try:
            newly_revoked = self.repository.revoke_quietly(token_id, **self._revocation(caller, role), audit=entry)
        except TokenNotFound:
            return "not_found", entry
        return ("revoked" if newly_revoked else "already_revoked"), entry

    def _revocation(self, caller: Caller, role: Role) -> Revocation:
        """Who may be revoked (admins: the organisation's tokens; others: their own), by whom, when."""
        now = int(self.clock())
        return {
            "org_id": caller.org_id,
            "owner_id": None if role.organisation_admin else caller.user_id,
            "revoked_at": now,
            "revoked_by": caller.user_id,
            "ttl": now + self.settings.retention_seconds,
        }

    def _flush(self, token_ids: list[str], served_by: ApiStage | None = None) -> None:
        """Revocation through every cache: flush every protected stage now (a failed flush is
        queued and retried), and again once no authorizer check that read the token before
        the revoke can still be running: such a check may cache its allow after the first."""
        stages = self.settings.flush_stages
        if served_by is not None and served_by not in stages:
            stages = (*stages, served_by)
        if not token_ids or not stages or self.flush_caches is None:
            return
        failed = self.flush_caches.flush(stages)
        if failed:
            self.flush_caches.flush_later(failed, 0)
        self.flush_caches.flush_later(stages, self.settings.second_flush_delay)

    # -- the audit log (admins) ---------------------------------------------------------------

    def audit_records(self, caller: Caller, query: AuditQuery) -> tuple[list[AuditRecord], PageKey | None]:
        """A page of the caller's organisation's audit records, newest first; entries that a
        failed function left unchained are appended first, so every stored change shows."""
        trail = self._audit_trail(caller)
        trail.drain(caller.org_id)
        return trail.records(replace(query, org_id=caller.org_id))

    def verify_audit(self, caller: Caller) -> ChainCheck:
        """Walks the organisation's chain and names the first broken link, if any."""
        trail = self._audit_trail(caller)
        trail.drain(caller.org_id)
        return verify_chain(trail.stored_records(caller.org_id))

    def _audit_trail(self, caller: Caller) -> AuditTrail:
        self._require_admin(caller, "read the audit log")
        if self.audit is None:
            raise PermissionDenied("The audit log is not configured.")
        return self.audit

    # -- membership changes -----------------------------------------------------------------

    def change_membership(self, caller: Caller, user_id: str, role: str | None) -> tuple[int, int]:
        """An admin tells the service that a user's role changed (or, with None, that they left
        the organisation), for identity providers that send no events. (revoked, trimmed)."""
        self._require_admin(caller, "change a user's membership")
        self._check_user_id(user_id)
        if role is not None and role not in self.catalog.roles:
            raise InvalidRequest.field("role", f"is not one of: {', '.join(sorted(self.catalog.roles))}")
        outcome = self.apply_membership(caller.org_id, user_id, role, "left" if role is None else "role")
        if role is None:
            self.repository.forget_member(caller.org_id, user_id)
        else:
            self.repository.remember_member(Member(caller.org_id, user_id, role), replace=True)
        return outcome

    def apply_membership(self, org_id: str, user_id: str, role: str | None, reason: str) -> tuple[int, int]:
        """Fits a user's live tokens in the organisation to their role: scopes it may not grant
        are removed, a token left with none (or every token, when `role` is None or unknown)
        is revoked, by `membership:<reason>`. Caches are flushed. Returns (revoked, trimmed)."""
        known = self.catalog.roles.get(role) if role is not None else None
        grantable = set(known.grantable_scopes) if known is not None else set()
        now = int(self.clock())
        revoked: list[str] = []
        trimmed: list[str] = []
        entries: list[AuditEntry] = []
        by = f"membership:{reason}"
        listing = Listing(org_id, user_id)
        start_key: PageKey | None = None
        while True:
            page = self.repository.list_tokens(listing, 100, start_key, None, now)
            for record in page.records:
                if record.status(now) not in ("active", "disabled"):
                    continue
                kept = tuple(scope for scope in record.scopes if scope in grantable)
                if kept == record.scopes:
                    continue
                if not kept:
                    entry = self._entry(org_id, AuditAction.REVOKED, by, record.token_id, at=now, kind="membership")
                    ttl = now + self.settings.retention_seconds
                    if self.repository.revoke_quietly(record.token_id, org_id, None, now, by, ttl, audit=entry):
                        revoked.append(record.token_id)
                        entries.append(entry)
                        self._announce(TokenEvent.REVOKED, token_detail(record, by) | {"kind": "membership"})
                    continue
                entry = self._entry(
                    org_id, AuditAction.SCOPES_TRIMMED, by, record.token_id, at=now, role=role, scopes=list(kept)
                )
                if self.repository.set_scopes(record.token_id, org_id, kept, entry):
                    trimmed.append(record.token_id)
                    entries.append(entry)
            start_key = page.next_key
            if start_key is None:
                break
        self._chain(*entries)
        self._flush(revoked + trimmed)
        return len(revoked), len(trimmed)

    def _entry(
        self,
        org_id: str,
        action: AuditAction,
        actor: str,
        subject: str,
        token_ids: tuple[str, ...] | None = None,
        *,
        caller: Caller | None = None,
        source_ip: str | None = None,
        at: int | None = None,
        **details: object,
    ) -> AuditEntry:
        """A change's audit entry, written with the change (never a secret)."""
        return AuditEntry(
            org_id,
            action,
            actor,
            subject,
            token_ids if token_ids is not None else (() if subject == "policy" else (subject,)),
            int(self.clock()) if at is None else at,
            caller.source_ip if caller is not None else source_ip,
            {name: value for name, value in details.items() if value is not None},
        )

    def _chain(self, *entries: AuditEntry) -> None:
        """Appends stored changes' entries to the audit chain (a failure leaves them for the next drain)."""
        if self.audit is not None and entries:
            self.audit.chain(list(entries))

    def _announce(self, detail_type: str, detail: dict[str, object]) -> None:
        """Publishes a lifecycle event after the change is stored (the publisher logs a failure)."""
        if self.events is not None:
            self.events.publish(detail_type, detail)

    # -- access rules ---------------------------------------------------------------------

    @staticmethod
    def _check_user_id(owner_id: str) -> None:
        if not is_valid_identifier(owner_id):
            raise InvalidRequest.field("owner_id", "is not a valid user id")

    @staticmethod
    def _may_see(caller: Caller, role: Role, record: TokenRecord) -> bool:
        if record.org_id != caller.org_id:
            return False
        return role.organisation_admin or record.owner_id == caller.user_id

    def _require_admin(self, caller: Caller, action: str, role: Role | None = None) -> None:
        role = role or self.catalog.role(caller.role)
        if not role.organisation_admin:
            raise PermissionDenied(f"Only organisation admins can {action}.")
