"""The scheduled cleanup: expiry notices, expiry marking and purging, reading only what is due.

Safe to run twice or concurrently: every step is a conditional write on the item's current
lifecycle stage, so only one run handles a given stage of a given token, and a run that
stops half-way (throttling, timeout) leaves the rest for the next run. The watermark (the
first day bucket not yet fully handled) only moves forward, and only past whole days.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.attribute_values import deserialize, serialize
from token_service.clock import Clock, system_clock, to_iso
from token_service.errors import DomainError
from token_service.lifecycle import (
    BUCKET_PREFIX,
    EXPIRED,
    EXPIRY_INDEX,
    PURGE,
    Schedule,
    lifecycle_keys,
    notify_days,
)
from token_service.records import token_key
from token_service.repository import ConditionNotMet, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

WATERMARK_KEY = {"pk": "LIFECYCLE", "sk": "WATERMARK"}
EVENT_SOURCE = "api-tokens"
PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class DueItem:
    token_id: str
    org_id: str
    owner_id: str
    name: str
    expires_at: int
    ttl: int
    stage: str
    due: int
    revoked: bool

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> DueItem:
        return cls(
            token_id=str(item["token_id"]),
            org_id=str(item["org_id"]),
            owner_id=str(item["owner_id"]),
            name=str(item.get("name", "")),
            expires_at=int(item["expires_at"]),
            ttl=int(item["ttl"]),
            stage=str(item["lifecycle_stage"]),
            due=int(item["lifecycle_due"]),
            revoked="revoked_at" in item,
        )


class LifecycleStore:
    """DynamoDB access for the cleanup (ClientError codes become domain errors)."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self.client = client

    def due_items(
        self, day: date, now: int, start_key: dict[str, Any] | None
    ) -> tuple[list[DueItem], dict[str, Any] | None, int]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": EXPIRY_INDEX,
            "KeyConditionExpression": "gsi3pk = :bucket AND gsi3sk <= :until",
            "ExpressionAttributeValues": serialize(
                {":bucket": f"{BUCKET_PREFIX}{day.isoformat()}", ":until": f"{now:011d}~"}
            ),
            "Limit": PAGE_SIZE,
        }
        if start_key:
            params["ExclusiveStartKey"] = start_key
        with translate_errors():
            response = self.client.query(**params)
        items = [DueItem.from_item(deserialize(raw)) for raw in response.get("Items", [])]
        return items, response.get("LastEvaluatedKey"), int(response.get("ScannedCount", len(items)))

    def move(
        self, item: DueItem, to: tuple[str, int], now: int, *, mark_expired: bool = False, from_revoked: bool = False
    ) -> bool:
        """Moves the item from its current stage to `to`; False if another run (or a revoke) got there first."""
        stage, due = to
        keys = lifecycle_keys(stage, due, item.token_id)
        update = "SET lifecycle_stage = :stage, lifecycle_due = :due, gsi3pk = :bucket, gsi3sk = :due_key"
        condition = "lifecycle_stage = :from_stage AND lifecycle_due = :from_due"
        values: dict[str, Any] = {
            ":stage": stage,
            ":due": due,
            ":bucket": keys["gsi3pk"],
            ":due_key": keys["gsi3sk"],
            ":from_stage": item.stage,
            ":from_due": item.due,
        }
        if not from_revoked:
            condition += " AND attribute_not_exists(revoked_at)"
        if mark_expired:
            update += ", expired_marked_at = :now"
            condition += " AND expires_at <= :now"
            values[":now"] = now
        return self._conditional_update(item.token_id, update, condition, values)

    def restore(self, item: DueItem, moved_to: tuple[str, int], *, unmark_expired: bool = False) -> None:
        """Undoes `move` after a failed publish, so the next run tries again."""
        keys = lifecycle_keys(item.stage, item.due, item.token_id)
        update = "SET lifecycle_stage = :stage, lifecycle_due = :due, gsi3pk = :bucket, gsi3sk = :due_key"
        self._conditional_update(
            item.token_id,
            update + (" REMOVE expired_marked_at" if unmark_expired else ""),
            "lifecycle_stage = :moved_stage AND lifecycle_due = :moved_due",
            {
                ":stage": item.stage,
                ":due": item.due,
                ":bucket": keys["gsi3pk"],
                ":due_key": keys["gsi3sk"],
                ":moved_stage": moved_to[0],
                ":moved_due": moved_to[1],
            },
        )

    def purge(self, item: DueItem, now: int) -> bool:
        """Deletes a token past its retention, from whatever stage a late run finds it in.

        The condition makes deleting a live token impossible, and deleting one that another
        run or a revoke has just changed (the stage and due time must be those read)."""
        try:
            with translate_errors():
                self.client.delete_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(item.token_id)),
                    ConditionExpression=(
                        "lifecycle_stage = :stage AND lifecycle_due = :due AND #ttl <= :now "
                        "AND (attribute_exists(revoked_at) OR expires_at <= :now)"
                    ),
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues=serialize({":stage": item.stage, ":due": item.due, ":now": now}),
                )
        except ConditionNotMet:
            return False
        return True

    def get_watermark(self) -> date | None:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=serialize(WATERMARK_KEY), ConsistentRead=True
            )
        item = response.get("Item")
        return date.fromisoformat(str(deserialize(item)["next_day"])) if item else None

    def advance_watermark(self, next_day: date) -> None:
        try:
            with translate_errors():
                self.client.put_item(
                    TableName=self.table_name,
                    Item=serialize({**WATERMARK_KEY, "next_day": next_day.isoformat()}),
                    ConditionExpression="attribute_not_exists(pk) OR next_day < :next",
                    ExpressionAttributeValues=serialize({":next": next_day.isoformat()}),
                )
        except ConditionNotMet:
            pass  # a concurrent run is already further along

    def _conditional_update(self, token_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            with translate_errors():
                self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    UpdateExpression=update,
                    ConditionExpression=f"attribute_exists(pk) AND {condition}",
                    ExpressionAttributeValues=serialize(values),
                )
        except ConditionNotMet:
            return False
        return True


class EventPublisher:
    """Publishes lifecycle events to the EventBridge bus. Returns False when not accepted."""

    def __init__(self, bus_name: str, client: Any) -> None:
        self.bus_name = bus_name
        self.client = client

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        try:
            response = self.client.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": detail_type,
                        "Detail": json.dumps(detail),
                        "EventBusName": self.bus_name,
                    }
                ]
            )
        except (ClientError, BotoCoreError):
            return False
        return int(response.get("FailedEntryCount", 0)) == 0


@dataclass
class RunReport:
    notified: int = 0
    marked: int = 0
    purged: int = 0
    items_read: int = 0
    days_scanned: int = 0
    complete: bool = True
    failures: list[str] = field(default_factory=list)


class CleanupRun:
    def __init__(
        self,
        store: LifecycleStore,
        publisher: EventPublisher,
        schedule: Schedule,
        *,
        lookback_days: int = 400,
        clock: Clock = system_clock,
        time_left: Callable[[], float] | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.schedule = schedule
        self.lookback_days = lookback_days
        self.clock = clock
        self.time_left = time_left or (lambda: float("inf"))

    def run(self) -> RunReport:
        report = RunReport()
        now = int(self.clock())
        today = datetime.fromtimestamp(now, UTC).date()
        try:
            day = self.store.get_watermark() or today - timedelta(days=self.lookback_days)
            while day <= today:
                report.days_scanned += 1
                if not self._handle_day(day, now, report):
                    report.complete = False
                    break
                if day < today:  # today's bucket can still receive items
                    self.store.advance_watermark(day + timedelta(days=1))
                day += timedelta(days=1)
        except DomainError as error:
            report.complete = False
            report.failures.append(type(error).__name__)
        return report

    def _handle_day(self, day: date, now: int, report: RunReport) -> bool:
        start_key: dict[str, Any] | None = None
        all_handled = True
        while True:
            if self.time_left() < 5:  # seconds: stop cleanly before the Lambda timeout
                return False
            items, start_key, scanned = self.store.due_items(day, now, start_key)
            report.items_read += scanned
            for item in items:
                all_handled = self._handle(item, now, report) and all_handled
            if start_key is None:
                return all_handled

    def _handle(self, item: DueItem, now: int, report: RunReport) -> bool:
        stage: str | None
        if item.revoked and item.stage != PURGE:
            # Revoked by an older version that did not move it: no notices, only the purge.
            if item.ttl > now:
                self.store.move(item, (PURGE, item.ttl), now, from_revoked=True)
                return True
            stage, following = PURGE, None
        else:
            stage, following = self.schedule.due_now(item.stage, item.expires_at, item.ttl, now)
        if stage is None:
            assert following is not None
            self.store.move(item, following, now)  # nothing due under the current thresholds
            return True
        if stage == PURGE:
            report.purged += int(self.store.purge(item, now))
            return True
        assert following is not None  # only purge is last
        if not self.store.move(item, following, now, mark_expired=stage == EXPIRED):
            return True  # another run handled this stage, or the token was revoked meanwhile
        if stage == EXPIRED:
            detail_type, extra = "TokenExpired", {}
            report.marked += 1
        else:
            detail_type, extra = "TokenExpiringSoon", {"days_before_expiry": notify_days(stage)}
        if not self.publisher.publish(detail_type, self._detail(item) | extra):
            self.store.restore(item, following, unmark_expired=stage == EXPIRED)
            report.failures.append(f"publish {detail_type}")
            if stage == EXPIRED:
                report.marked -= 1
            return False
        report.notified += 1
        return True

    @staticmethod
    def _detail(item: DueItem) -> dict[str, Any]:
        """Event detail: who and which token; never the secret (the cleanup never reads it)."""
        return {
            "org_id": item.org_id,
            "owner_id": item.owner_id,
            "token_id": item.token_id,
            "name": item.name,
            "expires_at": to_iso(item.expires_at),
        }


@dataclass(frozen=True, slots=True)
class CleanupSettings:
    event_bus_name: str
    lookback_days: int

    @classmethod
    def from_env(cls, env: dict[str, str]) -> CleanupSettings:
        bus = env.get("EVENT_BUS_NAME", "").strip()
        lookback = env.get("LIFECYCLE_LOOKBACK_DAYS", "400")
        if not bus or not lookback.isdigit():
            raise ValueError("EVENT_BUS_NAME must be set and LIFECYCLE_LOOKBACK_DAYS a whole number of days")
        return cls(event_bus_name=bus, lookback_days=int(lookback))
