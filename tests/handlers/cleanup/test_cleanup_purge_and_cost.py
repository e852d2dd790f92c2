"""The scheduled cleanup: purging past retention, and what a run reads."""

from __future__ import annotations

from typing import Any

import pytest
from support import CREATED, DAY, HOUR, MEMBER, RETENTION, TABLE_NAME, Cleanup, T, create, revoke

from token_service.domain.cleanup import DueItem
from token_service.domain.lifecycle import PURGE
from token_service.domain.records import TokenRecord
from token_service.domain.service import TokenService
from token_service.storage.attribute_values import serialize
from token_service.storage.items import token_item

# -- harness --------------------------------------------------------------------------------


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
