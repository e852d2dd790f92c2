"""The scheduled cleanup: the scheduled Lambda handler, end to end through EventBridge."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from support import DAY, HOUR, MEMBER, SECRET_PATTERN, Cleanup, create, iso, revoke

from devserver.gateway import LambdaContext, load_handler_module
from devserver.template import ROOT
from token_service.domain.service import TokenService

# -- harness --------------------------------------------------------------------------------


# -- 8. the Lambda handler, end to end through EventBridge ------------------------------------


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
