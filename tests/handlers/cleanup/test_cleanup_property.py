"""The scheduled cleanup: a property: random tokens, revocations and run times."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import boto3
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from support import ADMIN, DAY, EXPIRED, HOUR, RETENTION, TABLE_NAME, Cleanup, FakeClock, T, create

from devserver.template import table_definition
from token_service import wiring
from token_service.domain.errors import TokenNotFound
from token_service.domain.lifecycle import Schedule

# -- harness --------------------------------------------------------------------------------


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
