"""DynamoDB access for the scheduled cleanup: the expiry index, conditional stage moves, purges."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from token_service.domain.cleanup import DueItem, StartKey
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.items import BUCKET_PREFIX, EXPIRY_INDEX, WATERMARK_KEY, lifecycle_keys, token_key
from token_service.storage.repository import ConditionNotMet, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

PAGE_SIZE = 100


def due_item(item: dict[str, Any]) -> DueItem:
    return DueItem(
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

    def due_items(self, day: date, now: int, start_key: StartKey | None) -> tuple[list[DueItem], StartKey | None, int]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": EXPIRY_INDEX.name,
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
        items = [due_item(deserialize(raw)) for raw in response.get("Items", [])]
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
