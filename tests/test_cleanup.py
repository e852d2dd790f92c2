"""The scheduled expiry cleanup: notices, expiry marking, purging, cost, once-only delivery, faults.

Every test drives `CleanupRun` (or the real Lambda handler) against the moto table built from
template.yaml, with a fake clock, and checks what a user would notice: which events arrive and
when, which tokens list as expired, which items are deleted, and what a run reads.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from conftest import FakeClock
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import ROOT, table_definition
from token_service import wiring
from token_service.config import CleanupConfig
from token_service.domain.cleanup import CleanupRun, DueItem, RunReport
from token_service.domain.errors import StoreUnavailable, TokenNotFound
from token_service.domain.identity import Caller
from token_service.domain.lifecycle import PURGE, Schedule
from token_service.domain.records import TokenRecord
from token_service.domain.service import CreatedToken, TokenService
from token_service.domain.token_format import token_regex
from token_service.http.models import CreateTokenRequest
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.items import EXPIRY_INDEX, token_item, token_key
from token_service.storage.lifecycle_store import LifecycleStore

TABLE_NAME = os.environ["TABLE_NAME"]
BUS_NAME = os.environ["EVENT_BUS_NAME"]
DAY = 86_400
HOUR = 3_600
RETENTION = 30 * DAY
T = int(datetime(2030, 3, 20, 12, 0, tzinfo=UTC).timestamp())  # the expiry most tests revolve around
CREATED = T - 60 * DAY  # when their tokens were created
MEMBER = Caller("user-member", "org-acme", "member")
ADMIN = Caller("user-admin", "org-acme", "admin")
SECRET_PATTERN = re.compile(token_regex("lgk"))
DETAIL_FIELDS = {"org_id", "owner_id", "token_id", "name", "expires_at"}
EXPIRED = "expired"  # notice key of TokenExpired; ExpiringSoon notices are keyed by their days


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- harness --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    at: int  # the time of the run that published it
    detail_type: str
    detail: dict[str, Any]

    @property
    def key(self) -> tuple[str, int | str]:
        if self.detail_type == "TokenExpired":
            return self.detail["token_id"], EXPIRED
        assert self.detail_type == "TokenExpiringSoon", self.detail_type
        return self.detail["token_id"], self.detail["days_before_expiry"]


@dataclass
class RecordingPublisher:
    """Stands in for EventBridge; `reject` refuses that many publishes first (returns False)."""

    reject: int = 0
    now: int = 0
    sent: list[Sent] = field(default_factory=list)
    rejected: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        with self.lock:
            if self.reject:
                self.reject -= 1
                self.rejected.append((detail_type, detail))
                return False
            self.sent.append(Sent(self.now, detail_type, json.loads(json.dumps(detail))))
            return True

    def keys(self) -> Counter[tuple[str, int | str]]:
        return Counter(sent.key for sent in self.sent)

    def of(self, token_id: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.detail["token_id"] == token_id]

    def notices(self, token_id: str) -> list[int | str]:
        return [sent.key[1] for sent in self.of(token_id)]


class Cleanup:
    """Runs the cleanup against the test table at chosen times, recording what it publishes."""

    def __init__(self, service: TokenService, schedule: Schedule | None = None, lookback_days: int = 90) -> None:
        self.client = service.repository.client
        self.store = LifecycleStore(TABLE_NAME, self.client)
        self.publisher = RecordingPublisher()
        self.schedule = schedule or service.settings.schedule
        self.lookback_days = lookback_days
        self.reports: list[RunReport] = []

    def run(
        self, at: int, store: LifecycleStore | None = None, publisher: RecordingPublisher | None = None
    ) -> RunReport:
        publisher = publisher or self.publisher
        publisher.now = at
        report = CleanupRun(
            store or self.store, publisher, self.schedule, clock=lambda: at, lookback_days=self.lookback_days
        ).run()
        self.reports.append(report)
        return report

    def item(self, token_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=TABLE_NAME, Key=serialize(token_key(token_id)), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else None

    def exists(self, token_id: str) -> bool:
        return self.item(token_id) is not None

    def index_entries(self) -> list[dict[str, Any]]:
        """Everything in the ByExpiry index (what the cleanup could ever read)."""
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": TABLE_NAME, "IndexName": EXPIRY_INDEX.name}
        while True:
            page = self.client.scan(**params)
            entries.extend(deserialize(raw) for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return entries
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def clock(dynamodb: Any) -> FakeClock:
    fake = FakeClock(CREATED)
    wiring.get_service().clock = fake
    return fake


@pytest.fixture
def svc(clock: FakeClock) -> TokenService:
    return wiring.get_service()


@pytest.fixture
def cleanup(svc: TokenService) -> Cleanup:
    return Cleanup(svc)


def create(
    svc: TokenService, expires_at: int, *, at: int = CREATED, name: str = "deploy bot", caller: Caller = MEMBER
) -> CreatedToken:
    """Creates a token through the service, as the console does, at time `at`."""
    svc.clock = FakeClock(at)
    request = CreateTokenRequest(name=name, scopes=["reports:read"], expires_at=iso(expires_at)).command()
    created = svc.create_token(caller, request)
    assert created.record.expires_at == expires_at
    return created


def owner(index: int) -> Caller:
    """Spreads many tokens over several users (each may hold at most 50 active tokens)."""
    return Caller(f"user-{index % 4}", "org-acme", "member")


def revoke(svc: TokenService, token_id: str, at: int) -> None:
    svc.clock = FakeClock(at)
    assert svc.revoke_token(ADMIN, token_id).newly_revoked


def hourly(start: int, end: int, step: int = HOUR) -> list[int]:
    return list(range(start, end + 1, step))


def assert_no_secret(sent: list[Sent], created: list[CreatedToken]) -> None:
    text = json.dumps([[item.detail_type, item.detail] for item in sent])
    assert not SECRET_PATTERN.search(text)
    assert "secret_hash" not in text
    for token in created:
        assert token.secret not in text
        assert token.record.secret_hash not in text
        assert token.record.secret_hash[:16] not in text


# -- 1. expiry is judged by the clock, not by TTL -------------------------------------------


def test_an_expired_token_lists_as_expired_before_any_cleanup_run(
    member: Any, clock: FakeClock, cleanup: Cleanup
) -> None:
    clock.now = T - 10 * DAY
    token_id = member.create_ok(name="nightly export", expires_at=iso(T))["token_id"]

    clock.now = T - 1
    assert member.request("GET", f"/tokens/{token_id}").json()["status"] == "active"

    clock.now = T + 1  # no cleanup has run, TTL (expiry + 30 days) is far away
    assert member.request("GET", f"/tokens/{token_id}").json()["status"] == "expired"
    expired = member.request("GET", "/tokens", query={"status": "expired"}).json()["items"]
    assert [item["token_id"] for item in expired] == [token_id]
    assert member.request("GET", "/tokens", query={"status": "active"}).json()["items"] == []
    before = cleanup.item(token_id)
    assert before is not None and "expired_marked_at" not in before
    assert before["ttl"] == T + RETENTION

    report = cleanup.run(T + 2 * HOUR)

    assert report.complete and report.marked == 1
    after = cleanup.item(token_id)
    assert after is not None, "expiry must not delete the token: it stays listed until its retention ends"
    assert after["expired_marked_at"] == T + 2 * HOUR
    assert member.request("GET", f"/tokens/{token_id}").json()["status"] == "expired"
    assert cleanup.publisher.notices(token_id) == [EXPIRED]


# -- 2. notices ------------------------------------------------------------------------------


def test_each_notice_is_sent_once_at_its_time_over_hourly_runs(svc: TokenService, cleanup: Cleanup) -> None:
    on_the_hour = create(svc, T, name="on the hour")
    odd_time = T + 5 * HOUR + 17 * 60 + 3
    off_the_hour = create(svc, odd_time, name="at an odd minute", caller=ADMIN)

    for at in hourly(T - 8 * DAY, T + 2 * DAY):
        cleanup.run(at)
        cleanup.run(at)  # the same run again finds nothing to do
    for at in hourly(T + 2 * DAY, T + 29 * DAY, 7 * HOUR):  # and later runs send nothing either
        cleanup.run(at)

    assert all(report.complete for report in cleanup.reports)
    for token in (on_the_hour, off_the_hour):
        expires_at = token.record.expires_at
        sent = cleanup.publisher.of(token.record.token_id)
        assert [item.key[1] for item in sent] == [7, 1, EXPIRED]
        # Each is sent by the first run at or after its time: never early, at most an hour late.
        for item, due in zip(sent, (expires_at - 7 * DAY, expires_at - DAY, expires_at), strict=True):
            assert due <= item.at < due + HOUR, (item.key, iso(item.at), iso(due))
        assert cleanup.item(token.record.token_id) is not None  # retention has not ended
    assert sum(report.notified for report in cleanup.reports) == 6
    assert sum(report.marked for report in cleanup.reports) == 2

    sent = cleanup.publisher.of(on_the_hour.record.token_id)
    assert sent[0].at == T - 7 * DAY and sent[1].at == T - DAY and sent[2].at == T
    assert [item.detail_type for item in sent] == ["TokenExpiringSoon", "TokenExpiringSoon", "TokenExpired"]
    for item in cleanup.publisher.sent:
        token = on_the_hour if item.detail["token_id"] == on_the_hour.record.token_id else off_the_hour
        expected = {
            "org_id": "org-acme",
            "owner_id": token.record.owner_id,
            "token_id": token.record.token_id,
            "name": token.record.name,
            "expires_at": iso(token.record.expires_at),
        }
        if item.detail_type == "TokenExpiringSoon":
            expected["days_before_expiry"] = item.detail["days_before_expiry"]
        assert item.detail == expected
    assert_no_secret(cleanup.publisher.sent, [on_the_hour, off_the_hour])


def test_no_notice_is_sent_a_second_before_it_is_due(svc: TokenService, cleanup: Cleanup) -> None:
    token = create(svc, T)
    token_id = token.record.token_id

    for due, notice in ((T - 7 * DAY, 7), (T - DAY, 1), (T, EXPIRED)):
        cleanup.run(due - 1)
        assert notice not in cleanup.publisher.notices(token_id)
        cleanup.run(due)
        assert cleanup.publisher.notices(token_id)[-1] == notice
    assert cleanup.publisher.notices(token_id) == [7, 1, EXPIRED]


def test_a_first_run_that_comes_late_sends_only_the_latest_notice(svc: TokenService, cleanup: Cleanup) -> None:
    expiring = create(svc, T, name="expires at T")
    already_expired = create(svc, T - 13 * HOUR, name="expired an hour before the run")

    report = cleanup.run(T - 12 * HOUR)

    assert report.complete
    assert cleanup.publisher.notices(expiring.record.token_id) == [1]  # the 7-day notice was overtaken
    assert cleanup.publisher.notices(already_expired.record.token_id) == [EXPIRED]
    for at in (T - 11 * HOUR, T - HOUR, T, T + HOUR, T + DAY):
        cleanup.run(at)
    assert cleanup.publisher.notices(expiring.record.token_id) == [1, EXPIRED]
    assert cleanup.publisher.notices(already_expired.record.token_id) == [EXPIRED]


def test_revoked_tokens_get_no_notices_and_are_purged_30_days_after_revocation(
    svc: TokenService, cleanup: Cleanup
) -> None:
    early = create(svc, T, name="revoked before any notice")
    late = create(svc, T, name="revoked after its 7-day notice")
    kept = create(svc, T, name="never revoked")
    revocations = {T - 10 * DAY + 123: early.record.token_id, T - 3 * DAY + 45: late.record.token_id}
    early_purge = T - 10 * DAY + 123 + RETENTION
    late_purge = T - 3 * DAY + 45 + RETENTION
    edges = {early_purge - 1, early_purge, late_purge - 1, late_purge}
    times = sorted({*hourly(T - 12 * DAY, T + 31 * DAY, 6 * HOUR), *revocations, *edges})

    for at in times:
        if at in revocations:
            revoke(svc, revocations[at], at)
            continue
        cleanup.run(at)
        assert cleanup.exists(early.record.token_id) == (at < early_purge), iso(at)
        assert cleanup.exists(late.record.token_id) == (at < late_purge), iso(at)
        if T <= at < early_purge:
            early_item = cleanup.item(early.record.token_id)
            assert early_item is not None and "expired_marked_at" not in early_item

    assert cleanup.publisher.notices(early.record.token_id) == []
    assert cleanup.publisher.notices(late.record.token_id) == [7]
    assert cleanup.publisher.notices(kept.record.token_id) == [7, 1, EXPIRED]
    assert not cleanup.exists(kept.record.token_id)  # expiry + 30 days: purged too
    assert sum(report.purged for report in cleanup.reports) == 3


def test_thresholds_are_configurable(svc: TokenService) -> None:
    three_days = CleanupConfig.from_environ({**os.environ, "NOTIFY_BEFORE_DAYS": "3"}).schedule
    assert three_days == Schedule.parse("3")
    svc.settings = replace(svc.settings, schedule=three_days)  # a deployment with NOTIFY_BEFORE_DAYS=3
    token = create(svc, T)
    cleanup = Cleanup(svc, three_days)

    for at in hourly(T - 8 * DAY, T + DAY):
        cleanup.run(at)

    sent = cleanup.publisher.of(token.record.token_id)
    assert [item.key[1] for item in sent] == [3, EXPIRED]
    assert sent[0].at == T - 3 * DAY
    assert sent[0].detail["days_before_expiry"] == 3


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("3", [(3, T - 3 * DAY), (EXPIRED, T)]), ("", [(EXPIRED, T)])],
)
def test_changing_the_thresholds_keeps_notices_on_time_for_existing_tokens(
    svc: TokenService, setting: str, expected: list[tuple[int | str, int]]
) -> None:
    """Tokens created under NOTIFY_BEFORE_DAYS=7,1 wait in the 7-day stage; after the setting
    changes, the cleanup must still send each notice no earlier than its threshold, and the
    expiry itself must still be handled."""
    token = create(svc, T)  # created under the default 7,1: its next stage is the 7-day notice
    cleanup = Cleanup(svc, Schedule.parse(setting))

    for at in hourly(T - 8 * DAY, T + 2 * DAY):
        cleanup.run(at)

    sent = cleanup.publisher.of(token.record.token_id)
    assert [(item.key[1], item.at) for item in sent] == expected
    item = cleanup.item(token.record.token_id)
    assert item is not None and item.get("expired_marked_at") == T
    assert all(entry["lifecycle_due"] > T + 2 * DAY for entry in cleanup.index_entries())


# -- 3. purge --------------------------------------------------------------------------------


def test_tokens_past_their_retention_are_deleted_and_no_earlier(svc: TokenService, cleanup: Cleanup) -> None:
    expired = create(svc, T, name="expires at T")
    revoked = create(svc, T + 100 * DAY, name="revoked at T + 5 days")
    revoke(svc, revoked.record.token_id, T + 5 * DAY)

    report = cleanup.run(T + RETENTION - 1)
    assert report.purged == 0
    assert cleanup.exists(expired.record.token_id) and cleanup.exists(revoked.record.token_id)

    report = cleanup.run(T + RETENTION)  # DynamoDB's TTL has not got round to it
    assert report.purged == 1
    assert not cleanup.exists(expired.record.token_id)
    assert cleanup.exists(revoked.record.token_id)

    report = cleanup.run(T + 5 * DAY + RETENTION)
    assert report.purged == 1
    assert not cleanup.exists(revoked.record.token_id)
    assert cleanup.index_entries() == []


@pytest.mark.parametrize(
    "last_run", [None, T - 12 * HOUR], ids=["no run since it was created", "last run before its expiry"]
)
def test_the_first_run_after_the_retention_ended_purges_the_token(
    svc: TokenService, cleanup: Cleanup, last_run: int | None
) -> None:
    """The schedule can be off for a while (first deploy, a broken release, a disabled rule), so the
    token's notice or expiry stage may still be pending when its retention ends: the first run after
    that must delete it, and leave nothing due behind (the watermark moves past its bucket)."""
    token = create(svc, T)
    if last_run is not None:
        cleanup.run(last_run)
        assert cleanup.publisher.notices(token.record.token_id) == [1]

    report = cleanup.run(T + RETENTION + DAY)

    assert report.complete
    assert not cleanup.exists(token.record.token_id), "a token past its retention was not deleted"
    assert report.purged == 1
    assert cleanup.index_entries() == []


def test_a_live_token_can_never_be_purged(svc: TokenService, cleanup: Cleanup) -> None:
    live = create(svc, T, name="live")
    expired = create(svc, T - DAY, name="expired, within retention")
    revoked = create(svc, T + 50 * DAY, name="revoked, within retention")
    revoke(svc, revoked.record.token_id, T - 2 * DAY)
    now = T - HOUR

    for token in (live, expired, revoked):
        record = token.record
        forged = DueItem(
            token_id=record.token_id,
            org_id=record.org_id,
            owner_id=record.owner_id,
            name=record.name,
            expires_at=now - DAY,
            ttl=now - DAY,
            stage=PURGE,
            due=now - DAY,
            revoked=True,
        )
        before = cleanup.item(record.token_id)
        assert cleanup.store.purge(forged, now) is False
        assert cleanup.item(record.token_id) == before, record.name

    assert svc.get_token(MEMBER, live.record.token_id).status(now) == "active"


# -- 4. cost ---------------------------------------------------------------------------------


def seed(client: Any, records: list[TokenRecord]) -> None:
    for start in range(0, len(records), 25):
        requests = [{"PutRequest": {"Item": serialize(token_item(r))}} for r in records[start : start + 25]]
        pending: dict[str, Any] = {TABLE_NAME: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def seeded_record(svc: TokenService, token_id: str, expires_at: int, created: int) -> TokenRecord:
    ttl = expires_at + RETENTION
    stage, due = svc.settings.schedule.first(expires_at, ttl, created)
    return TokenRecord(
        token_id=token_id,
        org_id="org-acme",
        owner_id=f"user-{int(token_id[1:]) % 97}",
        name=f"seeded {token_id}",
        scopes=("reports:read",),
        created_at=created,
        created_at_us=created * 1_000_000,
        created_by="user-admin",
        expires_at=expires_at,
        secret_hash="f" * 64,
        hash_version=1,
        display_hint="lgk_...abcd",
        ttl=ttl,
        lifecycle_stage=stage,
        lifecycle_due=due,
    )


def test_a_run_reads_only_what_is_due_not_every_token(svc: TokenService, cleanup: Cleanup) -> None:
    now = T + 30 * 60
    live = [
        # 2,000 whose 7-day notice falls later today (same day bucket, after `now`) ...
        seeded_record(svc, f"L{index:015d}", T + 7 * DAY + HOUR + index * 15, CREATED)
        for index in range(2_000)
    ] + [
        # ... and 8,000 expiring over the next months.
        seeded_record(svc, f"L{index:015d}", T + 20 * DAY + index * 1_000, CREATED)
        for index in range(2_000, 10_000)
    ]
    due = [seeded_record(svc, f"D{index:015d}", T - 3 * DAY + index * 2_000, CREATED) for index in range(100)]
    assert all(record.lifecycle_due is not None and record.lifecycle_due <= now for record in due)
    assert all(record.lifecycle_due is not None and record.lifecycle_due > now for record in live)
    seed(cleanup.client, live + due)
    cleanup.lookback_days = 11  # back to the oldest due bucket (moto answers each Query in O(table))

    report = cleanup.run(now)

    assert report.complete
    assert report.days_scanned == 12
    assert report.notified == report.marked == 100
    assert len(cleanup.publisher.sent) == 100
    assert {sent.detail["token_id"] for sent in cleanup.publisher.sent} == {r.token_id for r in due}
    assert report.items_read <= 110, f"read {report.items_read} items for 100 due tokens out of 10,100"

    untouched = cleanup.item(live[0].token_id)
    assert untouched is not None and untouched["lifecycle_stage"] == "notify_7d"
    assert untouched["lifecycle_due"] == live[0].lifecycle_due

    again = cleanup.run(now + 10 * 60)  # the next run: nothing due, (almost) nothing read
    assert again.notified == 0
    assert again.items_read <= 10
    assert again.days_scanned <= 2


# -- 5. once only, even when runs overlap -----------------------------------------------------


class InterleavingStore(LifecycleStore):
    """A store for run A: right after A first reads due items, before it writes, `meanwhile` runs."""

    def __init__(self, client: Any, meanwhile: Callable[[], object]) -> None:
        super().__init__(TABLE_NAME, client)
        self.meanwhile: Callable[[], object] | None = meanwhile
        self.stale: list[DueItem] = []

    def due_items(self, *args: Any, **kwargs: Any) -> Any:
        result = super().due_items(*args, **kwargs)
        if result[0] and self.meanwhile is not None:
            self.stale = list(result[0])
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()
        return result


def overlapping_tokens(svc: TokenService, stage: str) -> list[CreatedToken]:
    """Five tokens whose `stage` is due at T, all in one day bucket (so one page of one query)."""
    expires_at = {"notice": T + 3 * DAY, "expiry": T - 2 * HOUR, "purge": T - 31 * DAY}[stage]
    return [create(svc, expires_at - index * 60, name=f"{stage} {index}") for index in range(5)]


@pytest.mark.parametrize("stage", ["notice", "expiry", "purge"])
def test_overlapping_runs_that_read_the_same_items_publish_each_notice_once(
    svc: TokenService, cleanup: Cleanup, stage: str
) -> None:
    tokens = overlapping_tokens(svc, stage)
    ids = {token.record.token_id for token in tokens}
    cleanup.lookback_days = 40
    if stage == "purge":  # an earlier run marked them expired: their next stage is the purge at T - 1 day
        assert cleanup.run(T - 30 * DAY, publisher=RecordingPublisher()).marked == 5
    publisher_b = RecordingPublisher(now=T)
    reports: dict[str, RunReport] = {}
    # Run A reads the due items; before it writes anything, run B reads them too and finishes.
    store_a = InterleavingStore(cleanup.client, lambda: reports.setdefault("B", cleanup.run(T, publisher=publisher_b)))

    reports["A"] = cleanup.run(T, store=store_a)

    assert {item.token_id for item in store_a.stale} == ids, "run A must act on the items it read before B ran"
    assert reports["A"].complete and reports["B"].complete
    assert cleanup.publisher.sent == []  # A's stale items were all handled already
    everything = cleanup.publisher.keys() + publisher_b.keys()
    if stage == "purge":
        assert everything == Counter()
        assert (reports["A"].purged, reports["B"].purged) == (0, 5)
        assert not any(cleanup.exists(token_id) for token_id in ids)
    else:
        notice = 7 if stage == "notice" else EXPIRED
        assert everything == Counter({(token_id, notice): 1 for token_id in ids})
        assert reports["A"].notified == reports["A"].marked == 0
        assert reports["B"].marked == (5 if stage == "expiry" else 0)
        assert all(cleanup.exists(token_id) for token_id in ids)


@pytest.mark.parametrize("stage", ["notice", "expiry"])
def test_a_token_revoked_while_a_run_holds_it_gets_no_notice(svc: TokenService, cleanup: Cleanup, stage: str) -> None:
    tokens = overlapping_tokens(svc, stage)
    cleanup.lookback_days = 40

    def revoke_all() -> None:
        for token in tokens:
            revoke(svc, token.record.token_id, T)

    store = InterleavingStore(cleanup.client, revoke_all)  # the run has read them; then they are revoked
    report = cleanup.run(T, store=store)

    assert len(store.stale) == 5
    assert report.complete
    assert cleanup.publisher.sent == []
    assert report.notified == report.marked == 0
    for token in tokens:
        item = cleanup.item(token.record.token_id)
        assert item is not None and "expired_marked_at" not in item
        assert (item["lifecycle_stage"], item["lifecycle_due"]) == (PURGE, T + RETENTION)


class SerializedClient:
    """Makes every DynamoDB call atomic, as DynamoDB's are (moto's in-memory backend is not
    thread-safe); the runs still interleave freely between calls."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@pytest.fixture
def fast_thread_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(previous)


def test_concurrent_runs_publish_each_notice_once(
    svc: TokenService, cleanup: Cleanup, fast_thread_switching: None
) -> None:
    tokens = [create(svc, T + index * 97, name=f"fleet {index}", caller=owner(index)) for index in range(50)]
    client = SerializedClient(cleanup.client)
    publisher = RecordingPublisher()
    reports: list[RunReport] = []

    for at in (T - 7 * DAY + 90 * 60, T - DAY + 90 * 60, T + 90 * 60, T + RETENTION + 90 * 60):
        publisher.now = at
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(at: int = at, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
            try:
                store = LifecycleStore(TABLE_NAME, client)  # type: ignore[arg-type]
                barrier.wait()
                concurrent = CleanupRun(store, publisher, cleanup.schedule, clock=lambda: at, lookback_days=10)
                reports.append(concurrent.run())
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

    counts = publisher.keys()
    expected = {(t.record.token_id, notice) for t in tokens for notice in (7, 1, EXPIRED)}
    assert set(counts) == expected
    duplicates = {key: count for key, count in counts.items() if count != 1}
    assert duplicates == {}
    assert all(report.complete for report in reports)
    assert sum(report.notified for report in reports) == 150
    assert sum(report.purged for report in reports) == 50
    assert cleanup.index_entries() == []


# -- 6. throttled half-way, then rerun; a refused publish is retried ---------------------------


class ThrottledStore(LifecycleStore):
    """Throttled (StoreUnavailable) after `moves` successful moves, or from the `queries`+1st query."""

    def __init__(self, client: Any, moves: int = 10**9, queries: int = 10**9) -> None:
        super().__init__(TABLE_NAME, client)
        self.moves_left = moves
        self.queries_left = queries

    def move(self, *args: Any, **kwargs: Any) -> bool:
        if self.moves_left <= 0:
            raise StoreUnavailable()
        self.moves_left -= 1
        return super().move(*args, **kwargs)

    def due_items(self, *args: Any, **kwargs: Any) -> Any:
        if self.queries_left <= 0:
            raise StoreUnavailable()
        self.queries_left -= 1
        return super().due_items(*args, **kwargs)


@pytest.mark.parametrize("fault", [{"moves": 17}, {"moves": 0}, {"queries": 3}])
def test_a_throttled_run_leaves_the_rest_for_the_next_run(
    svc: TokenService, cleanup: Cleanup, fault: dict[str, int]
) -> None:
    # Due at T: 7-day notices over three day buckets, expiries, and purges.
    noticed = [create(svc, T + 3 * DAY - i * 3_000, name=f"notice {i}", caller=owner(i)) for i in range(40)]
    expiring = [create(svc, T - DAY - i * 3_000, name=f"expiry {i}", caller=owner(i)) for i in range(10)]
    purged = [create(svc, T - 31 * DAY - i * 3_000, name=f"purge {i}", caller=owner(i)) for i in range(5)]
    future = [create(svc, T + 40 * DAY, name=f"future {i}", caller=owner(i)) for i in range(5)]
    cleanup.lookback_days = 40
    assert cleanup.run(T - 30 * DAY, publisher=RecordingPublisher()).marked == 5  # the purges' expiry

    first = cleanup.run(T, store=ThrottledStore(cleanup.client, **fault))

    assert not first.complete
    assert first.failures == ["StoreUnavailable"]
    assert len(cleanup.publisher.sent) == first.notified < 50
    if "moves" in fault:
        assert first.notified == fault["moves"]

    second = cleanup.run(T + 10 * 60)

    assert second.complete
    counts = cleanup.publisher.keys()
    expected = {(t.record.token_id, 7) for t in noticed} | {(t.record.token_id, EXPIRED) for t in expiring}
    assert set(counts) == expected
    assert all(count == 1 for count in counts.values()), counts
    assert first.purged + second.purged == 5
    for token in noticed + expiring + future:
        assert cleanup.exists(token.record.token_id), f"{token.record.name} was deleted early"
    assert not any(cleanup.exists(token.record.token_id) for token in purged)
    assert all(entry["lifecycle_due"] > T + 10 * 60 for entry in cleanup.index_entries())


@pytest.mark.parametrize("expires_in", [3 * DAY, -HOUR], ids=["expiry notice", "expired"])
def test_a_refused_publish_is_undone_and_sent_by_the_next_run(
    svc: TokenService, cleanup: Cleanup, expires_in: int
) -> None:
    tokens = [create(svc, T + expires_in - index * 60, name=f"token {index}") for index in range(6)]
    notice = 7 if expires_in > 0 else EXPIRED
    cleanup.publisher.reject = 1

    first = cleanup.run(T)

    assert not first.complete
    assert len(cleanup.publisher.rejected) == 1
    refused_id = cleanup.publisher.rejected[0][1]["token_id"]
    assert first.failures == [f"publish {cleanup.publisher.rejected[0][0]}"]
    assert first.notified == 5 and len(cleanup.publisher.sent) == 5
    assert first.marked == (5 if notice == EXPIRED else 0)
    assert refused_id not in {sent.detail["token_id"] for sent in cleanup.publisher.sent}

    second = cleanup.run(T + 5 * 60)

    assert second.complete and second.notified == 1
    assert cleanup.publisher.sent[-1].key == (refused_id, notice)
    assert cleanup.publisher.keys() == Counter({(t.record.token_id, notice): 1 for t in tokens})
    cleanup.run(T + 10 * 60)
    assert len(cleanup.publisher.sent) == 6
    assert all(cleanup.exists(t.record.token_id) for t in tokens)


# -- 7. property: random tokens, revocations and run times ------------------------------------


@dataclass
class ModelToken:
    """What the user should observe for one token, computed from the timeline alone."""

    token_id: str
    expires_at: int
    created: int
    revoked_at: int | None = None
    ttl: int = 0

    def live(self, at: int) -> bool:
        return self.revoked_at is None and self.expires_at > at


@st.composite
def timelines(draw: st.DrawFn) -> tuple[str, list[int], list[tuple[int, str, int]]]:
    setting = draw(st.sampled_from(["7,1", "3", "30,7,1", ""]))
    expiries = draw(st.lists(st.integers(-40 * DAY, 40 * DAY), min_size=1, max_size=8))
    # Times near the stages' boundaries (notices, expiry, purge) are the ones that matter.
    offsets = (-30 * DAY, -7 * DAY, -3 * DAY, -DAY, 0, RETENTION, RETENTION + 3 * DAY)
    interesting = sorted({expiry + offset for expiry in expiries for offset in offsets})
    moment = st.one_of(
        st.integers(-44 * DAY, 80 * DAY),
        st.builds(lambda t, j: t + j, st.sampled_from(interesting), st.integers(-2, 2)),
    ).filter(lambda t: -44 * DAY <= t <= 110 * DAY)
    events: list[tuple[int, str, int]] = []
    for index in range(len(expiries)):
        if draw(st.booleans()):
            events.append((draw(moment), "revoke", index))
    for at in draw(st.lists(moment, min_size=1, max_size=10, unique=True)):
        events.append((at, "run", -1))
    # Revocations sort before a run at the same second.
    return setting, expiries, sorted(events, key=lambda event: (event[0], event[1] == "run"))


def expected_notices(token: ModelToken, schedule: Schedule, runs: list[int]) -> Counter[tuple[str, int | str]]:
    """A token's notices: each stage (after creation) is sent by the first run in its window, i.e.
    at or after its time, before the next stage's time, before revocation and before purging."""
    stages = [(days, token.expires_at - days * DAY) for days in schedule.notify_before_days]
    stages = [(notice, due) for notice, due in [*stages, (EXPIRED, token.expires_at)] if due > token.created]
    ends = [due for _, due in stages[1:]] + [token.expires_at + RETENTION]
    stop = token.revoked_at if token.revoked_at is not None else float("inf")
    sent: Counter[tuple[str, int | str]] = Counter()
    for (notice, due), end in zip(stages, ends, strict=True):
        if any(due <= at < min(end, stop) for at in runs):
            sent[(token.token_id, notice)] += 1
    return sent


# Each example replays a whole timeline against moto (about half a second), so shrinking a failure
# would take minutes: failures are reported as generated, with the timeline in the message.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(timeline=timelines())
# Notices sent, then the schedule is off until the retention ends exactly (one-second steps around it).
@example(timeline=("7,1", [2_090], [(-12 * HOUR, "run", -1), (2_090 + RETENTION, "run", -1)]))
# A revocation after the 7-day notice, runs at the purge boundary of both tokens.
@example(
    timeline=(
        "7,1",
        [3 * DAY, -DAY],
        [
            (-5 * DAY, "run", -1),
            (-4 * DAY, "revoke", 0),
            (-DAY, "run", -1),
            (-4 * DAY + RETENTION - 1, "run", -1),
            (-4 * DAY + RETENTION, "run", -1),
            (-DAY + RETENTION, "run", -1),
        ],
    )
)
def test_property_random_tokens_and_runs(timeline: tuple[str, list[int], list[tuple[int, str, int]]]) -> None:
    setting, expiries, events = timeline
    schedule = Schedule.parse(setting)
    created_at = T - 45 * DAY
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(TableName=TABLE_NAME, **table_definition())
        wiring.reset()
        try:
            svc = wiring.get_service()
            svc.settings = replace(svc.settings, schedule=schedule)
            tokens = [
                ModelToken(create(svc, T + offset, at=created_at, name=f"t{i}").record.token_id, T + offset, created_at)
                for i, offset in enumerate(expiries)
            ]
            for token in tokens:
                token.ttl = token.expires_at + RETENTION
            cleanup = Cleanup(svc, schedule)
            runs: list[int] = []
            for at, kind, index in events:
                at += T
                if kind == "revoke":
                    token = tokens[index]
                    deleted = any(run >= token.ttl for run in runs)
                    svc.clock = FakeClock(at)
                    if deleted:
                        with pytest.raises(TokenNotFound):
                            svc.revoke_token(ADMIN, token.token_id)
                    else:
                        assert svc.revoke_token(ADMIN, token.token_id).newly_revoked
                        token.revoked_at, token.ttl = at, at + RETENTION
                    continue
                # The first run looks back to the day the tokens were created, no further.
                cleanup.lookback_days = (at - created_at) // DAY + 1
                report = cleanup.run(at)
                runs.append(at)
                assert report.complete, report
                check_after_run(cleanup, schedule, tokens, runs, at)
        finally:
            wiring.reset()


def check_after_run(cleanup: Cleanup, schedule: Schedule, tokens: list[ModelToken], runs: list[int], at: int) -> None:
    context = f"run at T{(at - T) / DAY:+.3f}d, runs {[round((r - T) / DAY, 3) for r in runs]}"
    for token in tokens:
        item = cleanup.item(token.token_id)
        where = f"{context}, token expiring T{(token.expires_at - T) / DAY:+.3f}d revoked {token.revoked_at}"
        # Deleted exactly when a run came at or after its retention end; never a live token.
        assert (item is None) == (at >= token.ttl), where
        if token.live(at):
            assert item is not None and "expired_marked_at" not in item, where
        if item is not None and "expired_marked_at" in item:
            assert item["expired_marked_at"] >= token.expires_at, where
    # A complete run leaves nothing due behind it.
    leftovers = [entry for entry in cleanup.index_entries() if entry["lifecycle_due"] <= at]
    assert leftovers == [], context
    # Each notice at most once, exactly the ones the timeline calls for, never early.
    actual = cleanup.publisher.keys()
    assert all(count == 1 for count in actual.values()), (context, actual)
    expected: Counter[tuple[str, int | str]] = Counter()
    for token in tokens:
        expected += expected_notices(token, schedule, runs)
    assert actual == expected, context
    for sent in cleanup.publisher.sent:
        token = next(t for t in tokens if t.token_id == sent.detail["token_id"])
        notice = sent.key[1]
        due = token.expires_at if notice == EXPIRED else token.expires_at - int(notice) * DAY
        assert sent.at >= due, context
        assert token.revoked_at is None or sent.at < token.revoked_at, context


# -- 8. the Lambda handler, end to end through EventBridge ------------------------------------


@pytest.fixture
def event_queue(dynamodb: Any) -> Callable[[], list[dict[str, Any]]]:
    """A real (moto) bus named like the deployed one, with a rule sending the service's events to SQS."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS_NAME)
    queue_url = sqs.create_queue(QueueName="token-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="to-queue", EventBusName=BUS_NAME, EventPattern=json.dumps({"source": ["api-tokens"]}))
    events.put_targets(Rule="to-queue", EventBusName=BUS_NAME, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def receive() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    return receive


def emf_metrics(output: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "ApiTokens"
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                values[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return values


def test_the_scheduled_lambda_sends_events_to_the_bus_and_reports(
    svc: TokenService, event_queue: Callable[[], list[dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    now = int(time.time())  # the handler runs on the real clock
    past_retention = create(svc, now - 35 * DAY, at=now - 60 * DAY, name="past retention")
    # An earlier run marked it expired; its next stage is the purge at expiry + 30 days.
    assert Cleanup(svc).run(now - 34 * DAY).marked == 1
    week_ahead = create(svc, now + 3 * DAY, at=now - 10 * DAY, name="seven-day notice")
    day_ahead = create(svc, now + 12 * HOUR, at=now - 10 * DAY, name="one-day notice")
    expired = create(svc, now - 2 * DAY, at=now - 10 * DAY, name="expired")
    revoked = create(svc, now + 100 * DAY, at=now - 60 * DAY, name="revoked long ago")
    revoke(svc, revoked.record.token_id, now - 31 * DAY)
    far = create(svc, now + 200 * DAY, at=now - DAY, name="far future")
    module = load_handler_module(ROOT / "functions" / "cleanup", "app.lambda_handler")
    event = json.loads((ROOT / "events" / "cleanup_scheduled.json").read_text())
    capsys.readouterr()

    result = module.lambda_handler(event, LambdaContext(function_name="CleanupFunction"))

    assert result["complete"] is True and result["failures"] == []
    assert (result["notified"], result["marked"], result["purged"]) == (3, 1, 2)
    assert 0 < result["items_read"] <= 10
    delivered = event_queue()
    assert all(message["source"] == "api-tokens" for message in delivered)
    got = sorted((m["detail-type"], m["detail"]["token_id"], m["detail"].get("days_before_expiry")) for m in delivered)
    assert got == sorted(
        [
            ("TokenExpiringSoon", week_ahead.record.token_id, 7),
            ("TokenExpiringSoon", day_ahead.record.token_id, 1),
            ("TokenExpired", expired.record.token_id, None),
        ]
    )
    expired_detail = next(m["detail"] for m in delivered if m["detail-type"] == "TokenExpired")
    assert expired_detail == {
        "org_id": "org-acme",
        "owner_id": MEMBER.user_id,
        "token_id": expired.record.token_id,
        "name": "expired",
        "expires_at": iso(now - 2 * DAY),
    }
    text = json.dumps(delivered)
    assert not SECRET_PATTERN.search(text) and "secret_hash" not in text
    for token in (week_ahead, day_ahead, expired, past_retention, revoked, far):
        assert token.secret not in text and token.record.secret_hash not in text
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["Notified"] == 3
    assert metrics["MarkedExpired"] == 1
    assert metrics["Purged"] == 2
    assert "IncompleteRuns" not in metrics
    lookup = Cleanup(svc)
    assert not lookup.exists(past_retention.record.token_id) and not lookup.exists(revoked.record.token_id)
    assert lookup.exists(far.record.token_id) and lookup.exists(expired.record.token_id)

    again = module.lambda_handler(event, LambdaContext(function_name="CleanupFunction"))  # the next hour's run
    assert (again["notified"], again["marked"], again["purged"]) == (0, 0, 0)
    assert event_queue() == []
