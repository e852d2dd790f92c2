"""DynamoDB access. Turns ClientError codes into domain errors; knows nothing of HTTP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.attribute_values import deserialize, serialize
from token_service.errors import ConcurrentModification, StoreFailure, StoreUnavailable, TokenNotFound
from token_service.lifecycle import PURGE, lifecycle_keys
from token_service.records import (
    ActiveSet,
    OrgPolicy,
    TokenRecord,
    active_set_key,
    policy_key,
    token_key,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RETRYABLE_ERROR_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)
_BATCH_GET_LIMIT = 100
_BATCH_GET_ROUNDS = 5


class ConditionNotMet(ConcurrentModification):
    """A conditional write's condition did not hold (callers that expect it catch it)."""


class ActiveSetChanged(Exception):
    """Another request changed the user's active set first: re-read and try again."""


class TokenIdTaken(Exception):
    """The random token id already exists (astronomically unlikely): generate another."""


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """One page of an index partition, newest first; `limit` bounds the items read."""

    index: str
    partition_attribute: str
    partition: str
    limit: int
    start_key: dict[str, str] | None = None
    filter_expression: str | None = None
    filter_values: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Page:
    records: list[TokenRecord]
    last_key: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class IdPage:
    token_ids: list[str]
    last_key: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class RevokeOutcome:
    record: TokenRecord
    newly_revoked: bool


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def translate_errors() -> Iterator[None]:
    """Maps boto errors that the caller did not handle itself to domain errors."""
    try:
        yield
    except ClientError as error:
        code = _error_code(error)
        if code == "ConditionalCheckFailedException":
            raise ConditionNotMet() from error
        if code in RETRYABLE_ERROR_CODES:
            raise StoreUnavailable() from error
        if code == "TransactionConflictException":  # a write racing another client's transaction
            raise ConcurrentModification() from error
        raise StoreFailure() from error
    except BotoCoreError as error:  # timeouts, connection failures
        raise StoreUnavailable() from error


class TokenRepository:
    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self.table_name = table_name
        self.client = client

    # -- tokens ---------------------------------------------------------------------------

    def get_token(self, token_id: str) -> TokenRecord | None:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=serialize(token_key(token_id)), ConsistentRead=True
            )
        item = response.get("Item")
        return TokenRecord.from_item(deserialize(item)) if item else None

    def reserve_slot(self, org_id: str, owner_id: str, active: ActiveSet, read_version: int) -> None:
        """Writes the user's active set with the new token's slot, conditional on the version
        the caller read: two creates racing for the last slot cannot both succeed.

        The slot is taken before the token is written. Should the token write then fail,
        the slot names a token that does not exist, and the next create that reaches the
        cap finds it gone and frees it: nothing is lost, no transaction is needed (half the
        write cost, and it works on every DynamoDB implementation)."""
        item = {**active_set_key(org_id, owner_id), "tokens": active.to_attribute(), "version": read_version + 1}
        try:
            with translate_errors():
                self.client.put_item(
                    TableName=self.table_name,
                    Item=serialize(item),
                    ConditionExpression="attribute_not_exists(pk) OR version = :read",
                    ExpressionAttributeValues={":read": {"N": str(read_version)}},
                )
        except ConditionNotMet as error:
            raise ActiveSetChanged() from error

    def put_new_token(self, record: TokenRecord) -> None:
        try:
            with translate_errors():
                self.client.put_item(
                    TableName=self.table_name,
                    Item=serialize(record.to_item()),
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ConditionNotMet as error:
            raise TokenIdTaken() from error

    def get_active_set(self, org_id: str, owner_id: str) -> ActiveSet:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name,
                Key=serialize(active_set_key(org_id, owner_id)),
                ConsistentRead=True,
            )
        item = response.get("Item")
        return ActiveSet.from_item(deserialize(item) if item else None)

    def revoked_or_missing(self, token_ids: list[str]) -> tuple[set[str], set[str]]:
        """Of the given ids: those whose token is revoked, and those with no token item."""
        found_active: set[str] = set()
        found_revoked: set[str] = set()
        for start in range(0, len(token_ids), _BATCH_GET_LIMIT):
            chunk = token_ids[start : start + _BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [serialize(token_key(token_id)) for token_id in chunk],
                    "ConsistentRead": True,
                    "ProjectionExpression": "token_id, revoked_at",
                }
            }
            for _ in range(_BATCH_GET_ROUNDS):
                with translate_errors():
                    response = self.client.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = deserialize(raw)
                    found = found_revoked if "revoked_at" in item else found_active
                    found.add(str(item["token_id"]))
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise StoreUnavailable()
        return found_revoked, set(token_ids) - found_active - found_revoked

    def query_tokens(self, query: IndexQuery) -> Page:
        """One page of whole tokens."""
        response = self._query(query)
        return Page(
            records=[TokenRecord.from_item(deserialize(item)) for item in response.get("Items", [])],
            last_key=_page_key(response),
        )

    def query_token_ids(self, query: IndexQuery) -> IdPage:
        """One page of ids: the response carries nothing else, a fraction of the bytes to send
        and to parse when the caller acts on ids (bulk revoke)."""
        response = self._query(query, projection="token_id")
        return IdPage(
            token_ids=[str(deserialize(item)["token_id"]) for item in response.get("Items", [])],
            last_key=_page_key(response),
        )

    def _query(self, query: IndexQuery, projection: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": query.index,
            "KeyConditionExpression": "#partition = :partition",
            "ExpressionAttributeNames": {"#partition": query.partition_attribute},
            "ExpressionAttributeValues": serialize({":partition": query.partition, **(query.filter_values or {})}),
            "ScanIndexForward": False,
            "Limit": query.limit,
        }
        if query.filter_expression:
            params["FilterExpression"] = query.filter_expression
        if projection:
            params["ProjectionExpression"] = projection
        if query.start_key:
            params["ExclusiveStartKey"] = serialize(query.start_key)
        with translate_errors():
            response: dict[str, Any] = self.client.query(**params)  # type: ignore[assignment]
        return response

    def record_use(self, token_id: str, used_at: int, source_ip: str | None, not_since: int) -> None:
        """Records the last use unless another request recorded one since `not_since`."""
        values: dict[str, Any] = {":at": used_at, ":since": not_since}
        update = "SET last_used_at = :at"
        if source_ip:
            update += ", last_used_ip = :ip"
            values[":ip"] = source_ip[:64]
        with translate_errors():
            try:
                self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    UpdateExpression=update,
                    ConditionExpression=(
                        "attribute_exists(pk) AND (attribute_not_exists(last_used_at) OR last_used_at < :since)"
                    ),
                    ExpressionAttributeValues=serialize(values),
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise

    def revoke(
        self, token_id: str, org_id: str, owner_id: str | None, revoked_at: int, revoked_by: str, ttl: int
    ) -> RevokeOutcome:
        """Marks the token revoked unless it already is, and returns the token as it now is."""
        result = self._set_revoked(token_id, org_id, owner_id, revoked_at, revoked_by, ttl, return_item=True)
        if isinstance(result, RevokeOutcome):
            return result
        return RevokeOutcome(record=TokenRecord.from_item(deserialize(result)), newly_revoked=True)

    def revoke_quietly(
        self, token_id: str, org_id: str, owner_id: str | None, revoked_at: int, revoked_by: str, ttl: int
    ) -> bool:
        """As revoke, for bulk revokes: True when this call revoked the token, False when it
        already was. The response carries no item, which saves parsing one per token."""
        result = self._set_revoked(token_id, org_id, owner_id, revoked_at, revoked_by, ttl, return_item=False)
        return not isinstance(result, RevokeOutcome)

    def _set_revoked(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        return_item: bool,
    ) -> dict[str, Any] | RevokeOutcome:
        """The token's new attributes, or the outcome of a token that was already revoked.

        The condition pins the organisation (and the owner for non-admins) and requires the
        item to exist, so revoke never creates an item nor touches another tenant's.
        """
        condition = "attribute_exists(pk) AND org_id = :org AND attribute_not_exists(revoked_at)"
        purge = lifecycle_keys(PURGE, ttl, token_id)
        values: dict[str, Any] = {
            ":org": org_id,
            ":at": revoked_at,
            ":by": revoked_by,
            ":ttl": ttl,
            ":stage": PURGE,
            ":bucket": purge["gsi3pk"],
            ":due_key": purge["gsi3sk"],
        }
        if owner_id is not None:
            condition += " AND owner_id = :owner"
            values[":owner"] = owner_id
        with translate_errors():
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    # Revoked tokens skip expiry notices: next stage is the purge at ttl.
                    UpdateExpression=(
                        "SET revoked_at = :at, revoked_by = :by, #ttl = :ttl, lifecycle_stage = :stage, "
                        "lifecycle_due = :ttl, gsi3pk = :bucket, gsi3sk = :due_key"
                    ),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues=serialize(values),
                    ReturnValues="ALL_NEW" if return_item else "NONE",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                return self._explain_failed_revoke(error, token_id, org_id, owner_id)
        attributes: dict[str, Any] = response.get("Attributes", {})
        return attributes

    def _explain_failed_revoke(
        self, error: ClientError, token_id: str, org_id: str, owner_id: str | None
    ) -> RevokeOutcome:
        """Why the condition failed: no such token (or not the caller's), or already revoked."""
        old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
        if old is not None:
            record: TokenRecord | None = TokenRecord.from_item(deserialize(old))
        else:
            # DynamoDB returns the item whenever it exists; implementations without
            # ReturnValuesOnConditionCheckFailure (dynalite) need a read to tell.
            record = self.get_token(token_id)
        if record is None or record.org_id != org_id or (owner_id is not None and record.owner_id != owner_id):
            raise TokenNotFound()
        if record.revoked_at is None:  # the condition failed for a reason the item does not show
            raise ConcurrentModification()
        return RevokeOutcome(record=record, newly_revoked=False)

    # -- organisation policy --------------------------------------------------------------

    def get_policy(self, org_id: str) -> OrgPolicy:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=serialize(policy_key(org_id)), ConsistentRead=True
            )
        item = response.get("Item")
        return OrgPolicy.from_item(deserialize(item) if item else None)

    def put_policy(self, org_id: str, policy: OrgPolicy) -> None:
        with translate_errors():
            self.client.put_item(TableName=self.table_name, Item=serialize(policy.to_item(org_id)))


def _page_key(response: Mapping[str, Any]) -> dict[str, str] | None:
    last_key = response.get("LastEvaluatedKey")
    return {key: str(value) for key, value in deserialize(last_key).items()} if last_key else None
