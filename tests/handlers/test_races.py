"""Revocation racing with authorization, and with other revocations.

Threads call the authorizer's Lambda handler directly (no API Gateway cache in between: the
cache is flushed by every revoke, see test_authorizer.py; what is raced here is the table)
while another thread revokes the token. Every call records when it started and what it got.
Once the revoke has returned, no call that started after that instant may be allowed; calls
that overlapped it may go either way.

The 20-parallel-creates-against-a-cap-of-10 race lives in test_active_cap.py
(test_parallel_creates_never_exceed_the_cap); it is not repeated here.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from support import METHOD_ARN_PREFIX, Console, authorize, call_self_service, mint, self_service_event, token_event

from devserver.gateway import policy_allows

CALLERS = 4
CALLS_AFTER_REVOKE = 25  # per caller thread, started after the revoke returned
CALLS_BEFORE_REVOKE = 10  # allowed calls, in all, before the revoke starts
DEADLINE_SECONDS = 60

# `atomic_dynamodb_requests` (tests/handlers/conftest.py) holds one lock around each emulated
# DynamoDB request. moto is not thread-safe: without the lock a GetItem can read an item while
# another thread's UpdateItem is half-applied (or fail with "dictionary changed size during
# iteration"), which real DynamoDB never does: each of its requests reads or writes an item
# atomically. The lock restores exactly that and nothing more: the authorizer's read and the
# revoke's write still interleave freely, request by request, which is the race under test.


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    outcome: str  # "allowed", "unauthorized", "denied" (a policy that does not allow the route) or an error


def call_authorizer(app: Any, token: str) -> Call:
    started = time.perf_counter()
    try:
        result = authorize(app, token_event(token, "GET", "v1/reports"))
    except Exception as error:
        outcome = "unauthorized" if str(error) == "Unauthorized" else f"error: {error!r}"
    else:
        outcome = "allowed" if policy_allows(result, f"{METHOD_ARN_PREFIX}/GET/v1/reports") else "denied"
    return Call(started, time.perf_counter(), outcome)


def _revoke_single(member: Console, token: str, app: Any) -> None:
    response = member.request("DELETE", f"/tokens/{token[4:20]}")
    assert response.status == 200 and response.json()["status"] == "revoked", response.body


def _revoke_bulk(member: Console, token: str, app: Any) -> None:
    response = member.request("POST", "/tokens/revoke", body={"owner_id": member.identity.user_id})
    assert response.status == 200 and response.json()["revoked"] == 1, response.body


def _revoke_itself(member: Console, token: str, app: Any) -> None:
    context = authorize(app, token_event(token, "DELETE", "v1/token"))["context"]
    status, body = call_self_service(self_service_event("DELETE", context))
    assert status == 200 and body["status"] == "revoked", body


@pytest.mark.parametrize(
    "revoke", [_revoke_single, _revoke_bulk, _revoke_itself], ids=["single", "bulk-by-owner", "self-service"]
)
def test_no_call_that_starts_after_a_revoke_returned_is_allowed(
    authorizer_app: Any,
    fake_apigateway: Any,
    atomic_dynamodb_requests: None,
    member: Console,
    revoke: Callable[[Console, str, Any], None],
) -> None:
    token = mint(["reports:read"], user=member.identity.user_id)
    calls: list[Call] = []  # list.append is atomic under the GIL
    revoked_at: list[float] = []  # the instant the revoke returned
    stop = threading.Event()
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            after = 0
            while not stop.is_set() and after < CALLS_AFTER_REVOKE:
                call = call_authorizer(authorizer_app, token)
                calls.append(call)
                if revoked_at and call.started > revoked_at[0]:
                    after += 1
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=caller, name=f"caller-{index}") for index in range(CALLERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    # Bounded polling: revoke once the callers are demonstrably being allowed.
    while sum(call.outcome == "allowed" for call in list(calls)) < CALLS_BEFORE_REVOKE:
        assert time.monotonic() < deadline and not errors, errors or "the callers were never allowed"
        time.sleep(0.001)
    revoke(member, token, authorizer_app)
    revoked_at.append(time.perf_counter())
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stop.set()
    assert not any(thread.is_alive() for thread in threads), "callers did not finish in time"
    assert not errors, errors

    boundary = revoked_at[0]
    after = [call for call in calls if call.started > boundary]
    assert len(after) >= CALLERS * CALLS_AFTER_REVOKE
    assert Counter(call.outcome for call in after) == {"unauthorized": len(after)}, Counter(
        call.outcome for call in after
    )
    # Before the revoke started, every call was allowed; nothing failed in between.
    assert {call.outcome for call in calls} <= {"allowed", "unauthorized"}
    assert sum(call.outcome == "allowed" for call in calls if call.ended < boundary) >= CALLS_BEFORE_REVOKE


PARALLEL_REVOKES = 8


def test_parallel_revokes_of_one_token_revoke_it_once(
    admin: Console,
    member: Console,
    fake_apigateway: Any,
    atomic_dynamodb_requests: None,
) -> None:
    """Owner and admin, single and bulk, all at once: each answers 200, exactly one of them
    revokes (and flushes the authorizer cache), and the first revocation is never overwritten."""
    token_id = member.create_ok("contested")["token_id"]
    start = threading.Barrier(PARALLEL_REVOKES, timeout=30)
    answers: list[Any] = []

    def revoke(index: int) -> None:
        console = admin if index % 2 else member
        start.wait()
        if index % 4 < 2:
            answers.append(("single", console.request("DELETE", f"/tokens/{token_id}")))
        else:
            answers.append(("bulk", console.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})))

    threads = [threading.Thread(target=revoke, args=(index,)) for index in range(PARALLEL_REVOKES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert len(answers) == PARALLEL_REVOKES

    assert all(response.status == 200 for _, response in answers), [response.body for _, response in answers]
    bulk_results = Counter(response.json()["results"][0]["result"] for kind, response in answers if kind == "bulk")
    assert set(bulk_results) <= {"revoked", "already_revoked"}
    # One revocation happened: one cache flush, and every answer names the same revoker and time.
    assert len(fake_apigateway.flushes) == 1, fake_apigateway.flushes
    final = member.request("GET", f"/tokens/{token_id}").json()
    assert final["status"] == "revoked"
    for kind, response in answers:
        if kind == "single":
            body = response.json()
            assert (body["revoked_at"], body["revoked_by"]) == (final["revoked_at"], final["revoked_by"])
