"""Revocation through every cache, on the local stack with the template's cache time (60 s):
a revoke that races the first checks of a token, and flushes of every protected API.

The dev server gives its authorizer's answers 0.5 s to reach the gateway after the function
read the token (DEV_AUTHORIZER_LATENCY_SECONDS), as a cold start or a slow network would: a
check that read the token before the revoke then caches its allow after the revoke's flush.
Only the second flush, after the authorizer's timeout, removes it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from support import RunningServer

ADMIN = {"X-Dev-User-Id": "race-admin", "X-Dev-Org-Id": "org-race", "X-Dev-Role": "admin"}
AUTHORIZER_TIMEOUT = 5  # AuthorizerFunction's Timeout in template.yaml
DEADLINE_AFTER_REVOKE = AUTHORIZER_TIMEOUT + 1

pytestmark = pytest.mark.devserver(env={"DEV_AUTHORIZER_LATENCY_SECONDS": "0.5"})


def mint(server: RunningServer) -> dict[str, str]:
    created = server.request("POST", "/tokens", {"name": "race", "scopes": ["reports:read"]}, ADMIN)
    assert created.status == 201, created.body
    return created.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Trial:
    token_id: str
    secret: str
    calls: list[tuple[float, int]] = field(default_factory=list)
    revoked_at: float = 0.0


def hammer(server: RunningServer, trial: Trial, stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.time()
        status = server.request("GET", "/v1/token", headers=bearer(trial.secret)).status
        trial.calls.append((started, status))


def test_a_revoke_racing_first_checks_leaves_no_allow_after_the_deadline(server: RunningServer) -> None:
    """25 trials, five at a time: threads call GET /v1/token with a fresh token while an admin
    revokes it. After the revoke returned, no request started later than the authorizer's
    timeout plus one second is allowed."""
    trials: list[Trial] = []
    for _ in range(5):
        batch = [Trial(**{"token_id": t["token_id"], "secret": t["token"]}) for t in (mint(server) for _ in range(5))]
        stop = threading.Event()
        threads = [threading.Thread(target=hammer, args=(server, trial, stop)) for trial in batch for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.01)  # the tokens' first checks are under way
        for trial in batch:
            response = server.request("DELETE", f"/tokens/{trial.token_id}", headers=ADMIN)
            assert response.status == 200 and response.json()["status"] == "revoked"
            trial.revoked_at = time.time()
        time.sleep(DEADLINE_AFTER_REVOKE + 1.5)
        stop.set()
        for thread in threads:
            thread.join()
        trials += batch
    assert len(trials) == 25
    late_allows = {
        trial.token_id: [round(at - trial.revoked_at, 2) for at, status in trial.calls if status == 200]
        for trial in trials
        if any(status == 200 and at > trial.revoked_at + DEADLINE_AFTER_REVOKE for at, status in trial.calls)
    }
    assert late_allows == {}
    checked = [at for trial in trials for at, _ in trial.calls if at > trial.revoked_at + DEADLINE_AFTER_REVOKE]
    assert checked, "no request was made after the deadline"
    # The race did happen: allows cached by checks that read the token before its revoke.
    raced = [trial for trial in trials if any(status == 200 and at > trial.revoked_at for at, status in trial.calls)]
    assert raced, "no check raced a revoke: the test proves nothing"


def test_every_kind_of_revoke_flushes_every_protected_api_now_and_after_the_timeout(server: RunningServer) -> None:
    stages = {"restapis/tokenapi/stages/local", "restapis/exampleapi/stages/local"}
    before = len(server.request("GET", "/_dev/flushes").json()["flushes"])
    self_revoked = mint(server)["token"]
    assert server.request("GET", "/v1/token", headers=bearer(self_revoked)).status == 200
    assert server.request("DELETE", "/v1/token", headers=bearer(self_revoked)).status == 200
    bulk = mint(server)
    assert server.request("POST", "/tokens/revoke", {"token_ids": [bulk["token_id"]]}, ADMIN).status == 200
    time.sleep(DEADLINE_AFTER_REVOKE + 1)
    flushes = server.request("GET", "/_dev/flushes").json()["flushes"][before:]
    # Each revoke: every protected stage now, and again after the authorizer's timeout.
    assert sorted(flush["stage"] for flush in flushes) == sorted([*stages] * 4)
    assert server.request("GET", "/v1/token", headers=bearer(self_revoked)).status == 401


def test_with_the_templates_cache_time_a_token_5_s_from_expiry_is_refused_at_once(server: RunningServer) -> None:
    """It may stop working up to AuthorizerCacheSeconds (60 s) early, never late."""
    expires = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    created = server.request(
        "POST", "/tokens", {"name": "soon", "scopes": ["reports:read"], "expires_at": expires}, ADMIN
    )
    assert created.status == 201, created.body
    assert server.request("GET", "/v1/token", headers=bearer(created.json()["token"])).status == 401
