"""The scheduled cleanup: runs that overlap, race a revoke, or fail half-way."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from support import (
    DAY,
    EXPIRED,
    HOUR,
    RETENTION,
    TABLE_NAME,
    Cleanup,
    RecordingPublisher,
    T,
    create,
    owner,
    revoke,
)

from token_service.domain.cleanup import CleanupRun, DueItem, RunReport
from token_service.domain.errors import StoreUnavailable
from token_service.domain.lifecycle import PURGE
from token_service.domain.service import CreatedToken, TokenService
from token_service.storage.lifecycle_store import LifecycleStore

# -- harness --------------------------------------------------------------------------------


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
