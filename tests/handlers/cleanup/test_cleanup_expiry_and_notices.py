"""The scheduled cleanup: expiry judged by the clock, and the expiry notices."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from support import (
    ADMIN,
    DAY,
    EXPIRED,
    HOUR,
    RETENTION,
    Cleanup,
    FakeClock,
    T,
    assert_no_secret,
    create,
    hourly,
    iso,
    revoke,
)

from token_service.config import CleanupConfig
from token_service.domain.lifecycle import Schedule
from token_service.domain.service import TokenService

# -- harness --------------------------------------------------------------------------------


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
