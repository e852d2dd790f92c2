"""Figure 6: bulk revoke of 1,000 tokens against 1,000 single revokes, one after another.

Through the management service, as the revoke handler calls it: one bulk revoke of an
owner's active tokens against single revokes of as many tokens, one after another. Each
repetition revokes fresh tokens (seeded untimed, just before), the two alternating. Over
HTTP to the endpoint, so every round trip is real. With a latency, a botocore `before-send`
hook on the service's client sleeps that long before each request: a network between the
function and DynamoDB, which loopback does not have (the sleep releases the GIL, as waiting
on a socket does). Import after `environment.configure`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from bench import seeding
from bench.backends import client
from bench.environment import TABLE_NAME, WorkerSettings
from bench.timing import interleaved_runs
from token_service.domain.commands import BulkSelection
from token_service.domain.identity import Caller
from token_service.wiring import get_service

ORG = "org-revoke"
TOKENS = 1_000


def run(settings: WorkerSettings) -> dict[str, Any]:
    service = get_service()
    if settings.latency_ms:
        delay = settings.latency_ms / 1000

        def add_latency(**_: Any) -> None:  # returning None lets botocore send the request
            time.sleep(delay)

        service.repository.client.meta.events.register("before-send.dynamodb", add_latency)
    admin = Caller(user_id="bench-admin", org_id=ORG, role="admin")
    dynamodb = client("dynamodb", settings.endpoint)
    tokens = 100 if settings.quick else TOKENS
    repetitions = 2 if settings.quick or settings.backend == "moto" else 3  # on moto a repetition takes ~20 s
    seeded = 0

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
        started = time.perf_counter()
        outcomes = [service.revoke_token(admin, token_id) for token_id in ids]
        elapsed = time.perf_counter() - started
        assert all(outcome.newly_revoked for outcome in outcomes)
        return elapsed

    def bulk() -> float:
        owner = f"bulk-{seeded}"
        seed(owner)
        started = time.perf_counter()
        results = service.bulk_revoke(admin, BulkSelection(owner_id=owner))
        elapsed = time.perf_counter() - started
        revoked = Counter(result for _, result in results)
        assert revoked == {"revoked": tokens}, revoked
        return elapsed

    times = interleaved_runs({"bulk": bulk, "single": singles}, repetitions)
    return {"latency_ms": settings.latency_ms, "tokens": tokens, "bulk_s": times["bulk"], "single_s": times["single"]}
