"""The audit log in DynamoDB: outboxes on the changed items, and each organisation's chain.

Items (the table's own pk/sk):
- a changed item (token or policy) carries its change's entries in `audit_outbox`, written in
  the same update as the change, and `audit_org`, the key of the sparse index ByAuditOutbox
  through which entries left there are found;
- `AUDIT#<org>` / `HEAD`: the chain's last seq and hash, and the records just committed
  (`pending`) until they are written out;
- `AUDIT#<org>` / `REC#<seq>`: a record: the entry as its canonical JSON (what the hash
  covers), searchable copies of actor, action, time and tokens, the previous hash and its own.

Appending is serialised by the head: a conditional update (seq must be the one read) commits
the next records into `pending`; writing them out and removing their entries from the
outboxes follows. Whoever appends next first finishes any pending records (idempotent), then
re-reads the outbox, so an entry is chained exactly once even if a function dies at any point.

Requests per append: one change costs six (head, outbox, commit, record, outbox, head); a
bulk change of N tokens costs about 2N + 5, since its outboxes are read in batches of 100
and its records written in batches of 25.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from token_service.domain.audit import GENESIS_HASH, AuditEntry, AuditQuery, AuditRecord, StoredRecord
from token_service.domain.commands import PageKey
from token_service.domain.errors import ConcurrentModification, DomainError, InvalidPageKey, StoreUnavailable
from token_service.domain.lifecycle import DAY
from token_service.observability import logger, metrics
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.items import policy_key, token_key
from token_service.storage.repository import ConditionNotMet, translate_errors

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

AUDIT_OUTBOX_INDEX = "ByAuditOutbox"  # sparse: only items with entries not yet chained
AUDIT_RECORD_PREFIX = "REC#"
POLICY_SUBJECT = "policy"
MAX_APPEND_ATTEMPTS = 20
WORKERS = 16  # as a bulk revoke: the records of a bulk change are written concurrently
Item = TypeVar("Item")
Result = TypeVar("Result")
RECORDS_PER_COMMIT = 100  # records a head update commits at once: well inside 400 KB
_QUERY_ROUNDS = 10
BATCH_GET_LIMIT = 100  # keys per BatchGetItem (DynamoDB's limit)
BATCH_WRITE_LIMIT = 25  # items per BatchWriteItem (DynamoDB's limit)
BATCH_ROUNDS = 5  # a batch's unprocessed part is sent again this often, backing off, then it fails


def audit_partition(org_id: str) -> str:
    return f"AUDIT#{org_id}"


def audit_head_key(org_id: str) -> dict[str, str]:
    return {"pk": audit_partition(org_id), "sk": "HEAD"}


def audit_record_key(org_id: str, seq: int) -> dict[str, str]:
    return {"pk": audit_partition(org_id), "sk": f"{AUDIT_RECORD_PREFIX}{seq:012d}"}


def audit_source_key(org_id: str, subject: str) -> dict[str, str]:
    """The item an entry's change was written to: the policy, or a token."""
    return policy_key(org_id) if subject == POLICY_SUBJECT else token_key(subject)


class AuditLog:
    def __init__(self, table_name: str, client: DynamoDBClient, retention_days: int) -> None:
        self.table_name = table_name
        self.client = client
        self.retention_seconds = retention_days * DAY

    # -- appending ------------------------------------------------------------------------

    def chain(self, entries: list[AuditEntry]) -> None:
        """Right after a change: appends its entries (in their items' outboxes), or logs why
        not. The change is stored and its entries wait in the outbox for the next drain."""
        try:
            self.append(entries)
        except DomainError as error:
            logger.warning("Audit entries left for the next drain", extra={"error": type(error).__name__})
            metrics.add_metric(name="AuditChainDeferred", unit="Count", value=1)

    def append(self, entries: list[AuditEntry]) -> None:
        """Appends entries that are in their items' outboxes, oldest first, per organisation."""
        by_org: dict[str, list[AuditEntry]] = {}
        for entry in sorted(entries, key=lambda entry: (entry.at, entry.event_id)):
            by_org.setdefault(entry.org_id, []).append(entry)
        for org_id, org_entries in by_org.items():
            for start in range(0, len(org_entries), RECORDS_PER_COMMIT):
                self._append(org_id, org_entries[start : start + RECORDS_PER_COMMIT])

    def drain(self, org_id: str) -> int:
        """Appends every entry still in an outbox of the organisation (a function died between
        its change and the append, or the append failed). Returns how many it appended."""
        outboxes = self._outboxes(list(self._outbox_items(org_id)))
        entries = [AuditEntry.from_json(text) for texts in outboxes.values() for text in texts]
        self.append(entries)
        return len(entries)

    def drain_all(self) -> int:
        """Every organisation's outboxes (the scheduled cleanup)."""
        params = {"IndexName": AUDIT_OUTBOX_INDEX, "ProjectionExpression": "audit_org"}
        orgs = {item["audit_org"]["S"] for item in self._every_item("scan", params)}
        return sum(self.drain(org_id) for org_id in sorted(orgs))

    def _every_item(self, operation: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The items of a Query or Scan, page after page (as DynamoDB returns them)."""
        params = {"TableName": self.table_name, **params}
        while True:
            with translate_errors():
                response = getattr(self.client, operation)(**params)
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _append(self, org_id: str, entries: list[AuditEntry]) -> None:
        for _ in range(MAX_APPEND_ATTEMPTS):
            head = self._head(org_id)
            self._write_out(org_id, head)
            # Chained meanwhile by another drain: its entry has left the outbox.
            waiting = self._still_waiting(entries)
            if not waiting:
                return
            seq, previous_hash = int(head.get("seq", 0)), str(head.get("hash", GENESIS_HASH))
            records: list[AuditRecord] = []
            for entry in waiting:
                record = AuditRecord.after(seq, previous_hash, entry)
                records.append(record)
                seq, previous_hash = record.seq, record.hash
            pending = [self._record_item(record) for record in records]
            if self._commit(org_id, head, seq, previous_hash, pending):
                self._write_out(org_id, {"seq": seq, "pending": pending})
                return
        raise ConcurrentModification()

    def _head(self, org_id: str) -> dict[str, Any]:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=serialize(audit_head_key(org_id)), ConsistentRead=True
            )
        item = response.get("Item")
        return deserialize(item) if item else {}

    def _commit(
        self, org_id: str, head: dict[str, Any], seq: int, last_hash: str, pending: list[dict[str, Any]]
    ) -> bool:
        """Moves the head to `seq` with the records to write out; False if another append moved it first."""
        values: dict[str, Any] = {":seq": seq, ":hash": last_hash, ":pending": pending}
        if head:
            condition = "#seq = :read"
            values[":read"] = int(head["seq"])
        else:
            condition = "attribute_not_exists(pk)"
        return self._update_head(org_id, "SET #seq = :seq, #hash = :hash, #pending = :pending", condition, values)

    def _update_head(self, org_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        """A conditional update of the chain's head; False if its condition did not hold."""
        used = f"{update} {condition}"
        names = {name: name[1:] for name in ("#seq", "#hash", "#pending") if name in used}
        try:
            with translate_errors():
                self.client.update_item(
                    TableName=self.table_name,
                    Key=serialize(audit_head_key(org_id)),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=serialize(values),
                )
        except ConditionNotMet:
            return False
        return True

    def _record_item(self, record: AuditRecord) -> dict[str, Any]:
        entry = record.entry
        item: dict[str, Any] = {
            **audit_record_key(entry.org_id, record.seq),
            "seq": record.seq,
            "entry": entry.to_json(),
            "prev_hash": record.prev_hash,
            "hash": record.hash,
            # Searchable copies (the entry is what the hash covers; verify compares the two).
            "at": entry.at,
            "actor": entry.actor,
            "action": entry.action.value,
            "token_ids": list(entry.token_ids),
        }
        if self.retention_seconds:
            item["ttl"] = entry.at + self.retention_seconds
        return item

    def _write_out(self, org_id: str, head: dict[str, Any]) -> None:
        """Writes the head's committed records (the same items, whoever writes them), takes
        their entries out of the outboxes, then clears them from the head."""
        pending: list[dict[str, Any]] = head.get("pending", [])
        if not pending:
            return
        self._put_records(pending)
        # Only once every record is stored: an entry leaves its outbox when its record exists.
        _each(self._remove_from_outbox, [AuditEntry.from_json(item["entry"]) for item in pending])
        # Unless the next append moved the head on meanwhile: then its records are its business.
        self._update_head(org_id, "REMOVE #pending", "#seq = :seq", {":seq": int(head["seq"])})

    def _put_records(self, items: list[dict[str, Any]]) -> None:
        """Stores records (whole items, the same whoever writes them): one PutItem, or
        BatchWriteItem in batches of 25, sent concurrently."""
        if len(items) == 1:
            with translate_errors():
                self.client.put_item(TableName=self.table_name, Item=serialize(items[0]))
            return
        batches = [items[start : start + BATCH_WRITE_LIMIT] for start in range(0, len(items), BATCH_WRITE_LIMIT)]
        _each(self._put_batch, batches)

    def _put_batch(self, items: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {self.table_name: [{"PutRequest": {"Item": serialize(item)}} for item in items]}
        for attempt in range(BATCH_ROUNDS):
            with translate_errors():
                request = self.client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
            if not request:
                return
            _back_off(attempt)
        raise StoreUnavailable()

    # -- outboxes -------------------------------------------------------------------------

    def _outbox_items(self, org_id: str) -> Iterator[dict[str, str]]:
        """The keys of the organisation's items whose outbox holds entries (the index says so)."""
        params = {
            "IndexName": AUDIT_OUTBOX_INDEX,
            "KeyConditionExpression": "audit_org = :org",
            "ExpressionAttributeValues": serialize({":org": org_id}),
        }
        for item in self._every_item("query", params):
            yield {"pk": item["pk"]["S"], "sk": item["sk"]["S"]}

    def _still_waiting(self, entries: list[AuditEntry]) -> list[AuditEntry]:
        """The entries still in their items' outboxes, read consistently."""
        keys = {_source(entry): audit_source_key(entry.org_id, entry.subject) for entry in entries}
        outboxes = self._outboxes(list(keys.values()))
        waiting = {(source, json.loads(text)["event_id"]) for source, texts in outboxes.items() for text in texts}
        return [entry for entry in entries if (_source(entry), entry.event_id) in waiting]

    def _outboxes(self, keys: list[dict[str, str]]) -> dict[tuple[str, str], list[str]]:
        """The outbox of each item (by pk and sk; empty if none): one GetItem for one item,
        else BatchGetItem, 100 keys at a time."""
        if len(keys) == 1:
            return {_pair(keys[0]): self._outbox_texts(serialize(keys[0]))}
        found: dict[tuple[str, str], list[str]] = {_pair(key): [] for key in keys}
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [serialize(key) for key in keys[start : start + BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "pk, sk, audit_outbox",
                }
            }
            for attempt in range(BATCH_ROUNDS):
                with translate_errors():
                    response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[(item["pk"]["S"], item["sk"]["S"])] = _texts(item)
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                _back_off(attempt)
            else:
                raise StoreUnavailable()
        return found

    def _remove_from_outbox(self, entry: AuditEntry) -> None:
        """Removes the entry from its item's outbox (and the item from the index once empty);
        nothing if it is gone already. The first try assumes what is usual, the entry alone in
        its outbox, and so needs no read."""
        key = serialize(audit_source_key(entry.org_id, entry.subject))
        texts: list[str] | None = [entry.to_json()]
        for _ in range(MAX_APPEND_ATTEMPTS):
            texts = texts if texts is not None else self._outbox_texts(key)
            position = next((i for i, text in enumerate(texts) if json.loads(text)["event_id"] == entry.event_id), None)
            if position is None:
                return
            values = serialize({":entry": texts[position]})
            if len(texts) == 1:
                update = "REMOVE audit_outbox, audit_org"
                condition = "audit_outbox[0] = :entry AND attribute_not_exists(audit_outbox[1])"
            else:
                update = f"REMOVE audit_outbox[{position}]"
                condition = f"audit_outbox[{position}] = :entry"
            try:
                with translate_errors():
                    self.client.update_item(
                        TableName=self.table_name,
                        Key=key,
                        UpdateExpression=update,
                        ConditionExpression=condition,
                        ExpressionAttributeValues=values,
                    )
                return
            except ConditionNotMet:
                texts = None  # not alone, or another entry was added or removed meanwhile: read it
        raise ConcurrentModification()

    def _outbox_texts(self, key: dict[str, Any]) -> list[str]:
        with translate_errors():
            response = self.client.get_item(
                TableName=self.table_name, Key=key, ConsistentRead=True, ProjectionExpression="audit_outbox"
            )
        return _texts(response.get("Item", {}))

    # -- reading --------------------------------------------------------------------------

    def records(self, query: AuditQuery) -> tuple[list[AuditRecord], PageKey | None]:
        """A page of the organisation's records, newest first, with the cursor of the next."""
        partition = audit_partition(query.org_id)
        filters: list[str] = []
        values: dict[str, Any] = {":partition": partition, ":records": AUDIT_RECORD_PREFIX}
        if query.token_id is not None:
            filters.append("contains(token_ids, :token)")
            values[":token"] = query.token_id
        if query.actor is not None:
            filters.append("#actor = :actor")
            values[":actor"] = query.actor
        if query.action is not None:
            filters.append("#action = :action")
            values[":action"] = query.action.value
        if query.since is not None:
            filters.append("#at >= :since")
            values[":since"] = query.since
        if query.until is not None:
            filters.append("#at <= :until")
            values[":until"] = query.until
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :partition AND begins_with(sk, :records)",
            "ScanIndexForward": False,
            "ConsistentRead": True,
            "ExpressionAttributeValues": serialize(values),
        }
        if filters:
            params["FilterExpression"] = " AND ".join(filters)
            names = {"#action": "action", "#at": "at", "#actor": "actor"}
            used = {name: value for name, value in names.items() if name in " ".join(filters)}
            if used:
                params["ExpressionAttributeNames"] = used
        if query.start_key is not None:
            params["ExclusiveStartKey"] = _check_start_key(query.start_key, partition)
        found: list[AuditRecord] = []
        for _ in range(_QUERY_ROUNDS):
            params["Limit"] = query.limit - len(found)
            with translate_errors():
                response = self.client.query(**params)
            found.extend(_audit_record(deserialize(item)) for item in response.get("Items", []))
            last_key = response.get("LastEvaluatedKey")
            if last_key is None:
                return found, None
            params["ExclusiveStartKey"] = last_key
            if len(found) >= query.limit:
                break
        return found, {key: str(value) for key, value in deserialize(params["ExclusiveStartKey"]).items()}

    def stored_records(self, org_id: str) -> Iterator[StoredRecord]:
        """Every kept record, oldest first, as stored (GET /audit/verify)."""
        values = {":partition": audit_partition(org_id), ":records": AUDIT_RECORD_PREFIX}
        params = {
            "KeyConditionExpression": "pk = :partition AND begins_with(sk, :records)",
            "ConsistentRead": True,
            "ExpressionAttributeValues": serialize(values),
        }
        for item in self._every_item("query", params):
            yield _stored_record(deserialize(item))


def _each(function: Callable[[Item], Result], items: list[Item]) -> list[Result]:
    """`function` over `items`, in order; concurrently when there are many (each call mostly
    waits on the network)."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(function, items))


def _source(entry: AuditEntry) -> tuple[str, str]:
    return _pair(audit_source_key(entry.org_id, entry.subject))


def _pair(key: dict[str, str]) -> tuple[str, str]:
    return key["pk"], key["sk"]


def _texts(item: dict[str, Any]) -> list[str]:
    """The entries (JSON texts) of a stored item's outbox."""
    return [text["S"] for text in item.get("audit_outbox", {}).get("L", [])]


def _back_off(attempt: int) -> None:
    """Before sending a batch's unprocessed part again, as DynamoDB asks: 50 ms, doubling."""
    time.sleep(0.05 * 2**attempt)


def _check_start_key(start_key: PageKey, partition: str) -> dict[str, Any]:
    """A forged cursor cannot reach another organisation's records, nor make DynamoDB fail."""
    if (
        set(start_key) != {"pk", "sk"}
        or start_key["pk"] != partition
        or not re.fullmatch(rf"{AUDIT_RECORD_PREFIX}\d{{12}}", start_key["sk"])
    ):
        raise InvalidPageKey()
    return serialize(start_key)


def _audit_record(item: dict[str, Any]) -> AuditRecord:
    return AuditRecord(int(item["seq"]), AuditEntry.from_json(item["entry"]), item["prev_hash"], item["hash"])


def _stored_record(item: dict[str, Any]) -> StoredRecord:
    """The record's hashed content, and its searchable copies as stored (verify compares them)."""
    try:
        fields = json.loads(item.get("entry", ""))
    except ValueError:
        fields = {"unreadable entry": item.get("entry")}
    copies = {
        "actor": item.get("actor"),
        "action": item.get("action"),
        "at": int(item["at"]) if "at" in item else None,
        "token_ids": list(item.get("token_ids", [])),
    }
    return StoredRecord(int(item["seq"]), fields, str(item.get("prev_hash")), str(item.get("hash")), copies)
