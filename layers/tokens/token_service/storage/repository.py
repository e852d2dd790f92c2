"""DynamoDB access for tokens, active sets and policies. Turns ClientError codes into domain errors."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from token_service.domain.audit import AuditEntry
from token_service.domain.commands import Listing, PageKey, RevokeOutcome, TokenPage
from token_service.domain.errors import (
    ActiveSetChanged,
    ConcurrentModification,
    InvalidPageKey,
    StoreFailure,
    StoreUnavailable,
    TokenIdTaken,
    TokenNotFound,
)
from token_service.domain.lifecycle import PURGE
from token_service.domain.membership import Member
from token_service.domain.records import ActiveSet, OrgPolicy, TokenGrant, TokenRecord
from token_service.domain.token_format import ID_LENGTH
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.items import (
    GRANT_PROJECTION,
    LIVE_FILTER,
    MEMBERS_PARTITION,
    ORG_INDEX,
    OWNER_INDEX,
    STATUS_FILTERS,
    TOKEN_SORT_KEY,
    UNUSED_POLICY_PARTITION,
    Index,
    active_set,
    active_set_attribute,
    active_set_key,
    lifecycle_keys,
    member_key,
    org_partition,
    org_policy,
    owner_partition,
    policy_item,
    policy_key,
    token_grant,
    token_item,
    token_key,
    token_record,
    unused_policy_key,
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
MAX_QUERY_ROUNDS = 10
BULK_PAGE_SIZE = 1000  # ids only: a full page is a few tens of kilobytes
_TOKEN_KEY = re.compile(rf"TOKEN#([0-9A-Za-z]{{{ID_LENGTH}}})")
_SORT_KEY = re.compile(rf"\d{{17}}#([0-9A-Za-z]{{{ID_LENGTH}}})")


class ConditionNotMet(ConcurrentModification):
    """A conditional write's condition did not hold (callers that expect it catch it)."""


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """One page of an index partition, newest first; `limit` bounds the items read."""

    index: Index
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
        return token_record(deserialize(item)) if item else None

    def get_grant(self, token_id: str) -> TokenGrant | None:
        """The authorizer's read: only the attributes its decision uses."""
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name,
                Key=serialize(token_key(token_id)),
                ConsistentRead=True,
                ProjectionExpression=GRANT_PROJECTION,
            )
        item = response.get("Item")
        return token_grant(item) if item else None

    def reserve_slot(self, org_id: str, owner_id: str, active: ActiveSet, read_version: int) -> None:
        """Writes the user's active set with the new token's slot, conditional on the version
        the caller read: two creates racing for the last slot cannot both succeed.

        The slot is taken before the token is written. Should the token write then fail,
        the slot names a token that does not exist, and the next create that reaches the
        cap finds it gone and frees it: nothing is lost, no transaction is needed (half the
        write cost, and it works on every DynamoDB implementation)."""
        item = {**active_set_key(org_id, owner_id), "tokens": active_set_attribute(active), "version": read_version + 1}
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

    def put_new_token(self, record: TokenRecord, audit: AuditEntry | None = None) -> None:
        item = token_item(record)
        if audit is not None:
            item.update(audit_outbox=[audit.to_json()], audit_org=audit.org_id)
        try:
            with translate_errors():
                self.client.put_item(
                    TableName=self.table_name,
                    Item=serialize(item),
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
        return active_set(deserialize(item) if item else None)

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

    def list_tokens(
        self, listing: Listing, limit: int, start_key: PageKey | None, status: str | None, now: int
    ) -> TokenPage:
        """Up to `limit` tokens of the listing, newest first, with `status` if given."""
        index, partition = _listing_partition(listing)
        if start_key is not None:
            _check_start_key(start_key, index, partition)
        filter_expression = STATUS_FILTERS.get(status) if status else None
        filter_values = {":now": now} if filter_expression and ":now" in filter_expression else None
        records: list[TokenRecord] = []
        # Without a filter one Query reads exactly `limit` items. With one, DynamoDB's Limit counts
        # items read, not matched, so keep reading, for a bounded number of rounds.
        for _ in range(MAX_QUERY_ROUNDS):
            page = self.query_tokens(
                IndexQuery(index, partition, limit - len(records), start_key, filter_expression, filter_values)
            )
            records.extend(page.records)
            start_key = page.last_key
            if len(records) >= limit or start_key is None:
                break
        return TokenPage(records=records, next_key=start_key)

    def live_token_ids(self, listing: Listing, now: int) -> Iterator[str]:
        """The ids of the listing's tokens that are neither revoked nor expired (disabled ones
        included), read a page at a time as they are consumed."""
        index, partition = _listing_partition(listing)
        start_key: dict[str, str] | None = None
        values = {":now": now}
        while True:
            page = self.query_token_ids(IndexQuery(index, partition, BULK_PAGE_SIZE, start_key, LIVE_FILTER, values))
            yield from page.token_ids
            start_key = page.last_key
            if start_key is None:
                return

    def live_tokens_page(self, org_id: str, now: int, start_key: PageKey | None) -> TokenPage:
        """One page of the organisation's tokens that are neither revoked nor expired."""
        query = IndexQuery(ORG_INDEX, org_partition(org_id), BULK_PAGE_SIZE, start_key, LIVE_FILTER, {":now": now})
        page = self.query_tokens(query)
        return TokenPage(records=page.records, next_key=page.last_key)

    def query_tokens(self, query: IndexQuery) -> Page:
        """One page of whole tokens."""
        response = self._query(query)
        return Page(
            records=[token_record(deserialize(item)) for item in response.get("Items", [])],
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
            "IndexName": query.index.name,
            "KeyConditionExpression": "#partition = :partition",
            "ExpressionAttributeNames": {"#partition": query.index.partition_attribute},
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
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        audit: AuditEntry | None = None,
    ) -> RevokeOutcome:
        """Marks the token revoked unless it already is, and returns the token as it now is."""
        result = self._set_revoked(
            token_id, org_id, owner_id, revoked_at, revoked_by, ttl, return_item=True, audit=audit
        )
        if isinstance(result, dict):
            return RevokeOutcome(record=token_record(deserialize(result)), newly_revoked=True)
        assert result is not None  # only a revoke with a further condition returns None
        return result

    def revoke_unused(
        self, token_id: str, org_id: str, unused_since: int, revoked_at: int, ttl: int, audit: AuditEntry | None = None
    ) -> bool:
        """Revokes the token for the unused-token policy, unless it was used after `unused_since`
        (or is already revoked). True when this call revoked it."""
        # Only the cleanup calls this: importing its module here keeps it out of every other
        # function's cold start (docs/performance.md, figure 3).
        from token_service.domain.cleanup import UNUSED_POLICY_ACTOR

        unused = "((attribute_not_exists(last_used_at) AND created_at <= :since) OR last_used_at <= :since)"
        result = self._set_revoked(
            token_id,
            org_id,
            None,
            revoked_at,
            UNUSED_POLICY_ACTOR,
            ttl,
            return_item=False,
            also=(unused, unused_since),
            audit=audit,
        )
        return isinstance(result, dict)

    def revoke_quietly(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        audit: AuditEntry | None = None,
    ) -> bool:
        """As revoke, for bulk revokes: True when this call revoked the token, False when it
        already was. The response carries no item, which saves parsing one per token."""
        result = self._set_revoked(
            token_id, org_id, owner_id, revoked_at, revoked_by, ttl, return_item=False, audit=audit
        )
        return isinstance(result, dict)

    def _set_revoked(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        revoked_at: int,
        revoked_by: str,
        ttl: int,
        return_item: bool,
        also: tuple[str, int] | None = None,
        audit: AuditEntry | None = None,
    ) -> dict[str, Any] | RevokeOutcome | None:
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
        if also is not None:  # a further condition on `:since`
            condition += f" AND {also[0]}"
            values[":since"] = also[1]
        # Revoked tokens skip expiry notices: next stage is the purge at ttl.
        update = with_audit(
            "SET revoked_at = :at, revoked_by = :by, #ttl = :ttl, lifecycle_stage = :stage, "
            "lifecycle_due = :ttl, gsi3pk = :bucket, gsi3sk = :due_key",
            values,
            audit,
        )
        with translate_errors():
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#ttl": "ttl"},
                    ExpressionAttributeValues=serialize(values),
                    ReturnValues="ALL_NEW" if return_item else "NONE",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                if also is not None:  # used since, or revoked meanwhile: nothing to explain
                    return None
                return self._explain_failed_revoke(error, token_id, org_id, owner_id)
        attributes: dict[str, Any] = response.get("Attributes", {})
        return attributes

    def _explain_failed_revoke(
        self, error: ClientError, token_id: str, org_id: str, owner_id: str | None
    ) -> RevokeOutcome:
        """Why the condition failed: no such token (or not the caller's), or already revoked."""
        record = self._visible_record(error, token_id, org_id, owner_id)
        if record.revoked_at is None:  # the condition failed for a reason the item does not show
            raise ConcurrentModification()
        return RevokeOutcome(record=record, newly_revoked=False)

    def set_disabled(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        disabled_at: int,
        disabled_by: str,
        audit: AuditEntry | None = None,
    ) -> tuple[TokenRecord, bool]:
        """Disables a live token unless it already is: the token as it now is, and whether
        this call disabled it. Not found (or not the caller's), revoked or expired: the record
        as it is, for the domain to explain; None if there is no such token for the caller."""
        values = {":at": disabled_at, ":by": disabled_by}
        return self._change_live_token(
            token_id,
            org_id,
            owner_id,
            "SET disabled_at = :at, disabled_by = :by",
            "attribute_not_exists(disabled_at)",
            values,
            now=disabled_at,
            audit=audit,
        )

    def set_enabled(
        self, token_id: str, org_id: str, owner_id: str | None, now: int, audit: AuditEntry | None = None
    ) -> tuple[TokenRecord, bool]:
        """Enables a disabled live token: as set_disabled, the other way."""
        return self._change_live_token(
            token_id,
            org_id,
            owner_id,
            "REMOVE disabled_at, disabled_by",
            "attribute_exists(disabled_at)",
            {},
            now=now,
            audit=audit,
        )

    def mark_rotated(self, old: TokenRecord, successor: str, expires_at: int, stage: tuple[str, int], ttl: int) -> None:
        """Links a live, not yet rotated token to its successor and shortens its life to the
        grace period's end; ConditionNotMet when it was rotated, revoked, disabled or changed
        since `old` was read."""
        values: dict[str, Any] = {
            ":org": old.org_id,
            ":owner": old.owner_id,
            ":read_expiry": old.expires_at,
            ":successor": successor,
            ":expires": expires_at,
            ":ttl": ttl,
            ":due": stage[1],
            **{f":{name}": value for name, value in lifecycle_keys(*stage, old.token_id).items()},
        }
        with translate_errors():
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(token_key(old.token_id)),
                UpdateExpression=(
                    "SET rotated_to = :successor, expires_at = :expires, #ttl = :ttl, "
                    "lifecycle_stage = :lifecycle_stage, lifecycle_due = :due, gsi3pk = :gsi3pk, gsi3sk = :gsi3sk"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND org_id = :org AND owner_id = :owner AND expires_at = :read_expiry "
                    "AND attribute_not_exists(revoked_at) AND attribute_not_exists(disabled_at) "
                    "AND attribute_not_exists(rotated_to)"
                ),
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues=serialize(values),
            )

    def set_scopes(self, token_id: str, org_id: str, scopes: tuple[str, ...], audit: AuditEntry | None = None) -> bool:
        """Narrows an unrevoked token's scopes (a membership change); False if it was revoked or
        purged meanwhile."""
        values: dict[str, Any] = {":scopes": list(scopes), ":org": org_id}
        update = with_audit("SET scopes = :scopes", values, audit)
        try:
            with translate_errors():
                self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    UpdateExpression=update,
                    ConditionExpression="attribute_exists(pk) AND org_id = :org AND attribute_not_exists(revoked_at)",
                    ExpressionAttributeValues=serialize(values),
                )
        except ConditionNotMet:
            return False
        return True

    def stamp_unused_policy(self, token_id: str, days: int | None) -> None:
        """Copies the organisation's unused-token policy onto one of its tokens, where the
        authorizer reads it. The update names the key and that attribute only (IAM holds the
        settings function to them); the ids come from the organisation's own listing."""
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": serialize(token_key(token_id)),
            "UpdateExpression": "REMOVE unused_after_days",
            "ConditionExpression": "attribute_exists(pk)",  # purged meanwhile: leave it gone
        }
        if days is not None:
            params["UpdateExpression"] = "SET unused_after_days = :days"
            params["ExpressionAttributeValues"] = serialize({":days": days})
        try:
            with translate_errors():
                self.client.update_item(**params)
        except ConditionNotMet:
            return

    def _change_live_token(
        self,
        token_id: str,
        org_id: str,
        owner_id: str | None,
        update: str,
        unless_done: str,
        values: dict[str, Any],
        *,
        now: int,
        audit: AuditEntry | None = None,
    ) -> tuple[TokenRecord, bool]:
        condition = (
            "attribute_exists(pk) AND org_id = :org AND attribute_not_exists(revoked_at) "
            f"AND expires_at > :now AND {unless_done}"
        )
        values = {**values, ":org": org_id, ":now": now}
        update = with_audit(update, values, audit)
        if owner_id is not None:
            condition += " AND owner_id = :owner"
            values[":owner"] = owner_id
        with translate_errors():
            try:
                response = self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(token_key(token_id)),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeValues=serialize(values),
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if _error_code(error) != "ConditionalCheckFailedException":
                    raise
                return self._visible_record(error, token_id, org_id, owner_id), False
        return token_record(deserialize(response["Attributes"])), True

    def _visible_record(self, error: ClientError, token_id: str, org_id: str, owner_id: str | None) -> TokenRecord:
        """The item a conditional update failed on, if the caller may act on it; else TokenNotFound."""
        old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
        if old is not None:
            record: TokenRecord | None = token_record(deserialize(old))
        else:
            # DynamoDB returns the item whenever it exists; implementations without
            # ReturnValuesOnConditionCheckFailure (dynalite) need a read to tell.
            record = self.get_token(token_id)
        if record is None or record.org_id != org_id or (owner_id is not None and record.owner_id != owner_id):
            raise TokenNotFound()
        return record

    # -- organisation policy --------------------------------------------------------------

    def get_policy(self, org_id: str) -> OrgPolicy:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=serialize(policy_key(org_id)), ConsistentRead=True
            )
        item = response.get("Item")
        return org_policy(deserialize(item) if item else None)

    def put_policy(self, org_id: str, policy: OrgPolicy, audit: AuditEntry | None = None) -> None:
        """Replaces the policy's fields (an update, not a put: entries waiting in the item's
        audit outbox stay)."""
        fields = {name: value for name, value in policy_item(org_id, policy).items() if name not in ("pk", "sk")}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values: dict[str, Any] = {f":f{i}": value for i, value in enumerate(fields.values())}
        update = "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        removed = [name for name in asdict(policy) if name not in fields]
        if removed:
            names.update({f"#r{i}": name for i, name in enumerate(removed)})
        update = with_audit(update, values, audit)
        if removed:
            update += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        with translate_errors():
            self.client.update_item(
                TableName=self.table_name,
                Key=serialize(policy_key(org_id)),
                UpdateExpression=update,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=serialize(values),
            )

    # -- token owners (token_service.domain.membership) --------------------------------------

    def members(self) -> Iterator[Member]:
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :partition",
            "ExpressionAttributeValues": serialize({":partition": MEMBERS_PARTITION}),
            "ConsistentRead": True,
        }
        while True:
            with translate_errors():
                response = self.client.query(**params)
            for item in map(deserialize, response.get("Items", [])):
                yield Member(str(item["org_id"]), str(item["user_id"]), str(item["role"]))
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def remember_member(self, member: Member, *, replace: bool) -> None:
        """Records a token owner; without `replace`, only if not yet known (a create never
        overwrites the role a membership change recorded)."""
        item = {**member_key(member.org_id, member.user_id), "org_id": member.org_id, "user_id": member.user_id}
        params: dict[str, Any] = {"TableName": self.table_name, "Item": serialize({**item, "role": member.role})}
        if not replace:
            params["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            with translate_errors():
                self.client.put_item(**params)
        except ConditionNotMet:
            return

    def forget_member(self, org_id: str, user_id: str) -> None:
        with translate_errors():
            self.client.delete_item(TableName=self.table_name, Key=serialize(member_key(org_id, user_id)))

    def unused_policies(self) -> list[tuple[str, int]]:
        """Every organisation whose policy revokes unused tokens, with its number of days."""
        policies: list[tuple[str, int]] = []
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :partition",
            "ExpressionAttributeValues": serialize({":partition": UNUSED_POLICY_PARTITION}),
        }
        while True:
            with translate_errors():
                response = self.client.query(**params)
            items = map(deserialize, response.get("Items", []))
            policies += [(str(item["org_id"]), int(item["days"])) for item in items]
            if "LastEvaluatedKey" not in response:
                return policies
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def register_unused_policy(self, org_id: str, days: int | None) -> None:
        """Adds the organisation to (or, with None, removes it from) the cleanup's list of
        organisations that revoke unused tokens."""
        key = serialize(unused_policy_key(org_id))
        with translate_errors():
            if days is None:
                self.client.delete_item(TableName=self.table_name, Key=key)
            else:
                item = {**unused_policy_key(org_id), "org_id": org_id, "days": days}
                self.client.put_item(TableName=self.table_name, Item=serialize(item))


def with_audit(update: str, values: dict[str, Any], audit: AuditEntry | None) -> str:
    """The update with the change's audit entry appended to the item's outbox, in the same
    write: the change cannot be stored without its entry (token_service.storage.audit)."""
    if audit is None:
        return update
    values.update({":audit_entries": [audit.to_json()], ":no_entries": [], ":audit_org": audit.org_id})
    outbox = (
        "audit_outbox = list_append(if_not_exists(audit_outbox, :no_entries), :audit_entries), audit_org = :audit_org"
    )
    if update.startswith("SET "):
        head, remove, rest = update.partition(" REMOVE ")
        return f"{head}, {outbox}{remove}{rest}"
    return f"SET {outbox} {update}"


def _page_key(response: Mapping[str, Any]) -> dict[str, str] | None:
    last_key = response.get("LastEvaluatedKey")
    return {key: str(value) for key, value in deserialize(last_key).items()} if last_key else None


def _listing_partition(listing: Listing) -> tuple[Index, str]:
    if listing.owner_id is None:
        return ORG_INDEX, org_partition(listing.org_id)
    return OWNER_INDEX, owner_partition(listing.org_id, listing.owner_id)


def _check_start_key(start_key: PageKey, index: Index, partition: str) -> None:
    """Refuses a start key that does not belong to this listing, so a forged one cannot reach
    into another partition, nor make DynamoDB fail with a 500: every value must be one the
    table can hold."""
    expected = {"pk", "sk", index.partition_attribute, index.sort_attribute}
    if (
        set(start_key) != expected
        or not all(isinstance(value, str) for value in start_key.values())
        or start_key[index.partition_attribute] != partition
        or start_key["sk"] != TOKEN_SORT_KEY
    ):
        raise InvalidPageKey()
    token = _TOKEN_KEY.fullmatch(start_key["pk"])
    position = _SORT_KEY.fullmatch(start_key[index.sort_attribute])
    if not token or not position or token.group(1) != position.group(1):
        raise InvalidPageKey()
