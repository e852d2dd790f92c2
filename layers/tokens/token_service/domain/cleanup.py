"""The scheduled cleanup: expiry notices, expiry marking and purging, reading only what is due.

Safe to run twice or concurrently: every step is a conditional write on the item's current
lifecycle stage, so only one run handles a given stage of a given token, and a run that
stops half-way (throttling, timeout) leaves the rest for the next run. The watermark (the
first day not yet fully handled) only moves forward, and only past whole days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from token_service.domain.audit import AuditAction, AuditEntry, AuditTrail
from token_service.domain.clock import Clock, system_clock, to_iso
from token_service.domain.commands import PageKey, TokenPage
from token_service.domain.errors import DomainError
from token_service.domain.events import EventSink, TokenEvent, token_detail
from token_service.domain.lifecycle import DAY, EXPIRED, PURGE, Schedule, notify_days
from token_service.domain.records import OrgPolicy

StartKey = dict[str, Any]
"""Where the reading of one day's due items resumes: opaque to the domain."""


@dataclass(frozen=True, slots=True)
class DueItem:
    token_id: str
    org_id: str
    owner_id: str
    name: str
    expires_at: int
    ttl: int
    stage: str
    due: int
    revoked: bool


class LifecycleStore(Protocol):
    """What the cleanup needs of storage (token_service.storage.lifecycle_store)."""

    def due_items(
        self, day: date, now: int, start_key: StartKey | None
    ) -> tuple[list[DueItem], StartKey | None, int]: ...
    def move(
        self, item: DueItem, to: tuple[str, int], now: int, *, mark_expired: bool = False, from_revoked: bool = False
    ) -> bool: ...
    def restore(self, item: DueItem, moved_to: tuple[str, int], *, unmark_expired: bool = False) -> None: ...
    def purge(self, item: DueItem, now: int) -> bool: ...
    def get_watermark(self) -> date | None: ...
    def advance_watermark(self, next_day: date) -> None: ...


class UnusedTokenStore(Protocol):
    """What revoking unused tokens needs of storage (token_service.storage.repository.TokenRepository)."""

    def unused_policies(self) -> list[tuple[str, int]]: ...
    def get_policy(self, org_id: str) -> OrgPolicy: ...
    def register_unused_policy(self, org_id: str, days: int | None) -> None: ...
    def live_tokens_page(self, org_id: str, now: int, start_key: PageKey | None) -> TokenPage: ...
    def stamp_unused_policy(self, token_id: str, days: int | None) -> None: ...
    def revoke_unused(
        self, token_id: str, org_id: str, unused_since: int, revoked_at: int, ttl: int, audit: AuditEntry | None = None
    ) -> bool: ...


UNUSED_POLICY_ACTOR = "policy:unused"


@dataclass
class RunReport:
    notified: int = 0
    marked: int = 0
    purged: int = 0
    unused_revoked: int = 0
    unused_checked: int = 0  # live tokens of organisations that revoke unused ones
    audit_drained: int = 0  # audit entries left in outboxes (a function died), now chained
    items_read: int = 0
    days_scanned: int = 0
    complete: bool = True
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class CleanupRun:
    store: LifecycleStore
    publisher: EventSink
    schedule: Schedule
    _: KW_ONLY
    lookback_days: int = 400
    unused: UnusedTokenStore | None = None  # None: no revoking of unused tokens
    audit: AuditTrail | None = None  # chains the revocations' entries; drains what others left
    retention_seconds: int = 30 * DAY
    clock: Clock = system_clock
    time_left: Callable[[], float] = field(default=lambda: float("inf"))  # seconds before the Lambda timeout

    def run(self) -> RunReport:
        report = RunReport()
        now = int(self.clock())
        today = datetime.fromtimestamp(now, UTC).date()
        try:
            day = self.store.get_watermark() or today - timedelta(days=self.lookback_days)
            while day <= today:
                report.days_scanned += 1
                if not self._handle_day(day, now, report):
                    report.complete = False
                    break
                if day < today:  # today's bucket can still receive items
                    self.store.advance_watermark(day + timedelta(days=1))
                day += timedelta(days=1)
        except DomainError as error:
            report.complete = False
            report.failures.append(type(error).__name__)
        self._revoke_unused(now, report)
        self._drain_audit(report)
        return report

    def _drain_audit(self, report: RunReport) -> None:
        """Chains the audit entries that functions wrote with their changes but did not chain."""
        if self.audit is None:
            return
        try:
            report.audit_drained = self.audit.drain_all()
        except DomainError as error:
            report.complete = False
            report.failures.append(f"audit drain: {type(error).__name__}")

    def _revoke_unused(self, now: int, report: RunReport) -> None:
        """Revokes the tokens that organisations' policies call unused (the authorizer already
        refuses them), and corrects any token whose copy of the policy is out of date."""
        if self.unused is None:
            return
        try:
            for org_id, _ in self.unused.unused_policies():
                # The policy item decides (the registry only lists candidates): a policy turned
                # off has its copies removed from the tokens, then leaves the registry.
                days = self.unused.get_policy(org_id).revoke_unused_after_days
                cutoff = now - days * DAY if days is not None else None
                start_key: PageKey | None = None
                while True:
                    if self.time_left() < 5:
                        report.complete = False
                        return
                    page = self.unused.live_tokens_page(org_id, now, start_key)
                    report.unused_checked += len(page.records)
                    entries: list[AuditEntry] = []
                    for record in page.records:
                        if record.unused_after_days != days:
                            self.unused.stamp_unused_policy(record.token_id, days)
                        since = record.last_used_at if record.last_used_at is not None else record.created_at
                        if cutoff is None or since > cutoff:
                            continue
                        entry = AuditEntry(
                            org_id,
                            AuditAction.REVOKED,
                            UNUSED_POLICY_ACTOR,
                            record.token_id,
                            (record.token_id,),
                            now,
                            details={"kind": "policy", "unused_after_days": days, "last_used_at": since},
                        )
                        ttl = now + self.retention_seconds
                        if self.unused.revoke_unused(record.token_id, org_id, cutoff, now, ttl, entry):
                            entries.append(entry)
                            report.unused_revoked += 1
                            detail = token_detail(record, UNUSED_POLICY_ACTOR) | {"kind": "policy"}
                            if not self.publisher.publish(TokenEvent.REVOKED, detail):
                                report.failures.append(f"publish {TokenEvent.REVOKED}")
                    if self.audit is not None and entries:
                        self.audit.chain(entries)
                    start_key = page.next_key
                    if start_key is None:
                        break
                if days is None:
                    self.unused.register_unused_policy(org_id, None)
        except DomainError as error:
            report.complete = False
            report.failures.append(type(error).__name__)

    def _handle_day(self, day: date, now: int, report: RunReport) -> bool:
        start_key: StartKey | None = None
        all_handled = True
        while True:
            if self.time_left() < 5:  # seconds: stop cleanly before the Lambda timeout
                return False
            items, start_key, scanned = self.store.due_items(day, now, start_key)
            report.items_read += scanned
            for item in items:
                all_handled = self._handle(item, now, report) and all_handled
            if start_key is None:
                return all_handled

    def _handle(self, item: DueItem, now: int, report: RunReport) -> bool:
        stage: str | None
        if item.revoked and item.stage != PURGE:
            # Revoked by an older version that did not move it: no notices, only the purge.
            if item.ttl > now:
                self.store.move(item, (PURGE, item.ttl), now, from_revoked=True)
                return True
            stage, following = PURGE, None
        else:
            stage, following = self.schedule.due_now(item.stage, item.expires_at, item.ttl, now)
        if stage is None:
            assert following is not None
            self.store.move(item, following, now)  # nothing due under the current thresholds
            return True
        if stage == PURGE:
            report.purged += int(self.store.purge(item, now))
            return True
        assert following is not None  # only purge is last
        if not self.store.move(item, following, now, mark_expired=stage == EXPIRED):
            return True  # another run handled this stage, or the token was revoked meanwhile
        if stage == EXPIRED:
            detail_type, extra = TokenEvent.EXPIRED, {}
            report.marked += 1
        else:
            detail_type, extra = TokenEvent.EXPIRING_SOON, {"days_before_expiry": notify_days(stage)}
        if not self.publisher.publish(detail_type, self._detail(item) | extra):
            self.store.restore(item, following, unmark_expired=stage == EXPIRED)
            report.failures.append(f"publish {detail_type}")
            if stage == EXPIRED:
                report.marked -= 1
            return False
        report.notified += 1
        return True

    @staticmethod
    def _detail(item: DueItem) -> dict[str, Any]:
        """Event detail: who and which token; never the secret (the cleanup never reads it)."""
        return {
            "org_id": item.org_id,
            "owner_id": item.owner_id,
            "token_id": item.token_id,
            "name": item.name,
            "expires_at": to_iso(item.expires_at),
        }
