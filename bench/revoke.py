"""Figure 6: bulk revoke of 1,000 tokens against 1,000 single revokes, one after another.

Through the service layer, as the revoke handler calls it: `TokenService.bulk_revoke` with
`{"owner_id": ...}` (a paged Query of the owner's active tokens, then conditional
UpdateItems on the service's worker threads) against `TokenService.revoke_token` called
1,000 times. Each repetition revokes fresh tokens (seeded untimed, just before), the two
alternating. Over HTTP to the endpoint, so every round trip is real. With a latency, a
botocore `before-send` hook on the service's client sleeps that long before each request:
a network between the function and DynamoDB, which loopback does not have (the sleep
releases the GIL, as waiting on a socket does). Import after `environment.configure`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench import seeding
from bench.backends import client
from bench.environment import TABLE_NAME, WorkerSettings
from bench.timing import compare, interleaved_runs
from token_service.api import get_service
from token_service.identity import Caller
from token_service.models import BulkRevokeRequest
from token_service.service import BULK_REVOKE_WORKERS

ORG = "org-revoke"
TOKENS = 1_000


def run(settings: WorkerSettings) -> dict[str, Any]:
    endpoint, quick = settings.endpoint, settings.quick
    service = get_service()
    calls: Counter[str] = Counter()
    counting = threading.Lock()  # the bulk revoke's worker threads call the hook concurrently

    def count(model: Any, **_: Any) -> None:
        with counting:
            calls[model.name] += 1

    service.repository.client.meta.events.register("before-call.dynamodb", count)
    if settings.latency_ms:
        delay = settings.latency_ms / 1000

        def add_latency(**_: Any) -> None:  # returning None lets botocore send the request
            time.sleep(delay)

        service.repository.client.meta.events.register("before-send.dynamodb", add_latency)
    admin = Caller(user_id="bench-admin", org_id=ORG, role="admin")
    dynamodb = client("dynamodb", endpoint)
    tokens = 100 if quick else TOKENS
    repetitions = 2 if quick or settings.backend == "moto" else 3  # on moto a repetition takes ~20 s
    seeded = 0
    operations: dict[str, Counter[str]] = {}
    cpu_s: dict[str, list[float]] = {"single": [], "bulk": []}  # this process's CPU time: the client's own work

    def seed(owner: str) -> list[str]:
        nonlocal seeded
        now = time.time()
        ids = [seeding.token_id(seeded + index, "rv") for index in range(tokens)]
        seeded += tokens
        records = (seeding.record(token_id, org_id=ORG, owner_id=owner, now=now) for token_id in ids)
        seeding.batch_write(dynamodb, TABLE_NAME, seeding.items(records), workers=4)
        return ids

    def singles() -> float:
        ids = seed(f"single-{seeded}")
        calls.clear()
        started, cpu = time.perf_counter(), time.process_time()
        outcomes = [service.revoke_token(admin, token_id) for token_id in ids]
        elapsed = time.perf_counter() - started
        cpu_s["single"].append(time.process_time() - cpu)
        assert all(outcome.newly_revoked for outcome in outcomes)
        operations["single"] = Counter(calls)
        return elapsed

    def bulk() -> float:
        owner = f"bulk-{seeded}"
        seed(owner)
        calls.clear()
        started, cpu = time.perf_counter(), time.process_time()
        results = service.bulk_revoke(admin, BulkRevokeRequest(owner_id=owner))
        elapsed = time.perf_counter() - started
        cpu_s["bulk"].append(time.process_time() - cpu)
        assert Counter(result for _, result in results) == {"revoked": tokens}, Counter(r for _, r in results)
        operations["bulk"] = Counter(calls)
        return elapsed

    times = interleaved_runs({"bulk": bulk, "single": singles}, repetitions)
    comparison = compare(times["bulk"], times["single"], block=1)
    return {
        "latency_ms": settings.latency_ms,
        "tokens": tokens,
        "workers": BULK_REVOKE_WORKERS,
        "comparison": comparison.as_dict(),
        "bulk_s": times["bulk"],
        "single_s": times["single"],
        "cpu_s": cpu_s,
        "operations": {name: dict(counter) for name, counter in operations.items()},
    }
