"""Figures 4 and 5: the cleanup and the listing at 1,000, 10,000 and 100,000 tokens.

Cleanup (4): a table of N tokens of which 1% are due (their 7-day expiry notice fell due
earlier today), the rest due on later days spread over a year; the watermark is today, as
after the previous hourly run. The real handler (functions/cleanup/app.py) runs against each
table in turn; between runs the due items are put back as they were. Items read come from
the handler's report (DynamoDB's ScannedCount).

List (5): the real list handler (GET /tokens?all_users=true) for an admin of an
organisation holding all N tokens; the Query's ScannedCount and ConsumedCapacity
(requested with ReturnConsumedCapacity=TOTAL by a botocore hook, which adds the parameter
and changes nothing else) for the first and second page of each page size.

With no endpoint, moto runs in this process (its threaded server, so every call is still
HTTP) and the tables are seeded straight into moto's backend: seeding 100,000 items over HTTP
takes minutes. Import after nothing: this module configures the environment itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bench.environment import REGION, WorkerSettings, configure

SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
DUE_EVERY = 100  # 1% of the tokens are due
OWNERS = 50
LIST_LIMITS = (20, 100)
Writer = Callable[[str, Iterable[dict[str, Any]]], None]


def _moto_backend_writer() -> Writer:
    """Puts items straight into moto's in-process backend.

    Item for item what moto's PutItem stores; only moto's item-size check is skipped, which
    re-measures the whole item on every attribute set (quadratic, and most of the cost)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]

    def write(table_name: str, items: Iterable[dict[str, Any]]) -> None:
        table = backend.get_table(table_name)
        for attributes in items:
            item = Item.__new__(Item)
            item.hash_key = DynamoType(attributes["pk"])
            item.range_key = DynamoType(attributes["sk"])
            item.attrs = LimitedSizeDict.__new__(LimitedSizeDict)
            dict.update(item.attrs, {name: DynamoType(value) for name, value in attributes.items()})
            table.items[item.hash_key][item.range_key] = item

    return write


def _http_writer(dynamodb: Any) -> Writer:
    from bench.seeding import batch_write

    def write(table_name: str, items: Iterable[dict[str, Any]]) -> None:
        batch_write(dynamodb, table_name, items, workers=4)

    return write


@dataclass
class ScaleTable:
    size: int
    name: str
    org: str
    due: list[dict[str, Any]] = field(default_factory=list)  # serialized due items + the watermark (last)
    runs: list[dict[str, Any]] = field(default_factory=list)


def _seed(size: int, now: float, write: Writer, endpoint: str) -> ScaleTable:
    from bench import seeding
    from bench.backends import create_table
    from token_service.storage.attribute_values import serialize
    from token_service.storage.items import WATERMARK_KEY, token_item

    table = ScaleTable(size=size, name=f"bench-scale-{size}", org=f"org-{size}")
    create_table(endpoint, table.name)
    today = datetime.fromtimestamp(now, UTC).date()
    start_of_today = int(datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp())
    due_window = max(1, int(now) - 60 - start_of_today)  # notices due between midnight and a minute ago
    year = 365 * seeding.DAY
    batch: list[dict[str, Any]] = []
    for index in range(size):
        identifier = seeding.token_id(index, f"s{size}")
        owner = f"user-{index % OWNERS}"
        created_us = int(now * 1_000_000) - (size - index) * 1_000
        if index % DUE_EVERY == 0:
            due = start_of_today + (index * 7_919) % due_window
            token = seeding.record(
                identifier,
                org_id=table.org,
                owner_id=owner,
                now=now,
                expires_at=due + 7 * seeding.DAY,
                created_at_us=created_us,
            )
            token = replace(token, lifecycle_stage="notify_7d", lifecycle_due=due)
        else:  # expiring over the next year: the 7-day notice falls due on a later day
            expires = int(now) + 7 * seeding.DAY + 1 + (index * 104_729) % year
            token = seeding.record(
                identifier, org_id=table.org, owner_id=owner, now=now, expires_at=expires, created_at_us=created_us
            )
        item = serialize(token_item(token))
        if index % DUE_EVERY == 0:
            table.due.append(item)
        batch.append(item)
        if len(batch) == 5_000:
            write(table.name, batch)
            batch = []
    # The watermark goes back with the due items before every run: a run that starts after midnight
    # UTC still reads the seeded day (and then today).
    table.due.append(serialize({**WATERMARK_KEY, "next_day": today.isoformat()}))
    write(table.name, [*batch, table.due[-1]])
    return table


class QueryProbe:
    """Asks DynamoDB for ReturnConsumedCapacity=TOTAL on a client's Query calls (the only
    change made to the request) and records what each one read."""

    def __init__(self, client: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        client.meta.events.register("provide-client-params.dynamodb.Query", self._ask_capacity)
        client.meta.events.register("after-call.dynamodb.Query", self._after)

    @staticmethod
    def _ask_capacity(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "TOTAL"

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        capacity = parsed.get("ConsumedCapacity") or {}
        self.calls.append({"scanned": parsed.get("ScannedCount"), "capacity": capacity.get("CapacityUnits")})


def _cleanup(tables: list[ScaleTable], write: Writer, repetitions: dict[int, int]) -> None:
    from devserver.gateway import LambdaContext, load_handler_module
    from devserver.template import function

    spec = function("CleanupFunction")
    module = load_handler_module(spec.code_dir, spec.handler)
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    most = max(repetitions.values())
    for repetition in range(most):
        due_tables = [table for table in tables if len(table.runs) < repetitions[table.size]]
        shift = repetition % len(due_tables)
        for table in due_tables[shift:] + due_tables[:shift]:
            write(table.name, table.due)  # every due item back in its due stage
            module.store.table_name = table.name
            context = LambdaContext("CleanupFunction", timeout_seconds=300)  # its Timeout
            started = time.perf_counter()
            report = module.lambda_handler(event, context)
            elapsed = time.perf_counter() - started
            complete = report["complete"] and not report["failures"]
            table.runs.append({"seconds": elapsed, "items_read": report["items_read"], "complete": complete})


def _list(tables: list[ScaleTable], slow_endpoint: str | None = None) -> list[dict[str, Any]]:
    from devserver.gateway import Identity, console_request
    from token_service import wiring
    from token_service.storage.aws import dynamodb_client

    service = wiring.get_service()
    if slow_endpoint:
        # moto in this process answers a Query of the 100,000-token table in seconds, past the
        # service's read timeout; the figure counts what the handler reads, which this leaves as is.
        service.repository.client = dynamodb_client(slow_endpoint, read_timeout=300.0)
    probe = QueryProbe(service.repository.client)
    rows = []
    for table in tables:
        service.repository.table_name = table.name
        identity = Identity(user_id="bench-admin", org_id=table.org, role="admin")
        for limit in LIST_LIMITS:
            cursor = None
            for page in (1, 2):
                query = {"all_users": "true", "limit": str(limit), **({"next": cursor} if cursor else {})}
                probe.calls = []
                response = console_request(identity, "GET", "/tokens", query=query)
                assert response.status == 200, response.body
                body = response.json()
                cursor = body["next"]
                rows.append(
                    {
                        "size": table.size,
                        "limit": limit,
                        "page": page,
                        "items": len(body["items"]),
                        "queries": len(probe.calls),
                        "scanned": sum(call["scanned"] or 0 for call in probe.calls),
                        "capacity": (
                            sum(call["capacity"] for call in probe.calls)
                            if all(call["capacity"] is not None for call in probe.calls)
                            else None
                        ),
                    }
                )
    return rows


def run(settings: WorkerSettings) -> dict[str, Any]:
    endpoint, server = settings.endpoint, None
    if not endpoint:
        from bench import motoserver

        endpoint, server = motoserver.start()
        configure(endpoint, endpoint)
    from bench.backends import client, prepare

    try:
        if server is not None:
            prepare(endpoint, events=True)
        write = _moto_backend_writer() if server is not None else _http_writer(client("dynamodb", endpoint))
        sizes = QUICK_SIZES if settings.quick else SIZES
        now = time.time()
        tables = [_seed(size, now, write, endpoint) for size in sizes]
        _cleanup(tables, write, {size: 2 if settings.quick else 5 if size <= 10_000 else 1 for size in sizes})
        list_rows = _list(tables, endpoint if server is not None else None)
    finally:
        if server is not None:
            server.stop()
    return {
        "seeding": "moto in this process, items put straight into its backend" if server else "BatchWriteItem",
        "tables": [{"size": table.size, "due": len(table.due) - 1, "runs": table.runs} for table in tables],
        "list": list_rows,
    }
