"""The repository's conditional writes, each condition clause by clause, on an in-memory table.

`Table` below is DynamoDB's item API reduced to what the repository's writes use (GetItem,
PutItem, UpdateItem with SET and REMOVE, condition expressions), and as strict as DynamoDB
where a wrong request would otherwise pass unnoticed: every placeholder must be defined and
every defined one used, keywords are case-insensitive but function and attribute names are
not, values must be typed attribute values, enums are checked, and a failed condition raises
ConditionalCheckFailedException with the old item (ReturnValuesOnConditionCheckFailure). The
same repository runs on moto and dynalite in tests/handlers/test_repository.py; these run in
milliseconds, so `make mutation` can use them. Fast: no moto, no server."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from botocore.exceptions import ClientError
from support import TABLE_NAME, TOKEN_IN_TEXT, Console

from devserver.gateway import Identity
from token_service import wiring
from token_service.domain.audit import AuditAction, AuditEntry
from token_service.domain.cleanup import UNUSED_POLICY_ACTOR
from token_service.domain.errors import (
    ActiveSetChanged,
    ConcurrentModification,
    StoreFailure,
    StoreUnavailable,
    TokenIdTaken,
    TokenNotFound,
)
from token_service.domain.lifecycle import EXPIRED, PURGE, Schedule
from token_service.domain.membership import Member
from token_service.domain.records import ActiveSet, Slot, TokenRecord
from token_service.domain.token_format import generate_token
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.items import lifecycle_keys, member_key, token_key
from token_service.storage.repository import ConditionNotMet, TokenRepository

TABLE = TABLE_NAME  # the service's, from the environment tests/conftest.py sets
NOW = 1_900_000_000
DAY = 86_400
RETENTION = 30 * DAY

# -- an in-memory DynamoDB table ------------------------------------------------------------

_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS"})
_TOKEN = re.compile(
    r"(?P<op><>|<=|>=|=|<|>)|(?P<punct>[(),])|(?P<name>#[A-Za-z0-9_]+)|(?P<value>:[A-Za-z0-9_]+)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)"
)
_FUNCTIONS = ("attribute_exists", "attribute_not_exists")  # case-sensitive, as DynamoDB's
_PARAMETERS = {
    "GetItem": ({"TableName", "Key"}, {"ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"}),
    "PutItem": (
        {"TableName", "Item"},
        {"ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues", "ReturnValues"},
    ),
    "UpdateItem": (
        {"TableName", "Key", "UpdateExpression"},
        {
            "ConditionExpression",
            "ExpressionAttributeNames",
            "ExpressionAttributeValues",
            "ReturnValues",
            "ReturnValuesOnConditionCheckFailure",
        },
    ),
}
_RETURN_VALUES = {
    "PutItem": {"NONE", "ALL_OLD"},
    "UpdateItem": {"NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"},
}

Item = dict[str, dict[str, Any]]


def invalid(operation: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": "ValidationException", "Message": message}}, operation)


def _check_value(operation: str, value: object) -> None:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _TYPES:
        raise invalid(operation, f"not an attribute value: {value!r}")
    ((kind, content),) = value.items()
    if kind == "N":
        try:
            Decimal(content)
        except (InvalidOperation, TypeError):
            raise invalid(operation, f"not a number: {content!r}") from None
    elif kind == "S" and not isinstance(content, str):
        raise invalid(operation, f"not a string: {content!r}")
    elif kind == "L":
        for element in content:
            _check_value(operation, element)
    elif kind == "M":
        for element in content.values():
            _check_value(operation, element)


class _Expressions:
    """Parses one request's expressions; resolves #names and :values, remembering which were used."""

    def __init__(self, operation: str, names: dict[str, str] | None, values: Item | None) -> None:
        self.operation = operation
        self.names = names or {}
        self.values = values or {}
        self.used_names: set[str] = set()
        self.used_values: set[str] = set()
        for value in self.values.values():
            _check_value(operation, value)

    def tokens(self, text: str) -> list[tuple[str, str]]:
        tokens, position = [], 0
        while position < len(text):
            if text[position].isspace():
                position += 1
                continue
            match = _TOKEN.match(text, position)
            if match is None:
                raise invalid(self.operation, f"syntax error at {text[position:]!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def path(self, token: tuple[str, str]) -> str:
        kind, text = token
        if kind == "name":
            if text not in self.names:
                raise invalid(
                    self.operation, f"An expression attribute name used in the document path is not defined: {text}"
                )
            self.used_names.add(text)
            return self.names[text]
        if kind == "word" and text.upper() not in {"AND", "OR", "NOT", "SET", "REMOVE", "ADD", "DELETE"}:
            return text
        raise invalid(self.operation, f"not an attribute: {text!r}")

    def operand(self, token: tuple[str, str]) -> Callable[[Item], dict[str, Any] | None]:
        kind, text = token
        if kind == "value":
            if text not in self.values:
                raise invalid(
                    self.operation, f"An expression attribute value used in expression is not defined: {text}"
                )
            self.used_values.add(text)
            value = self.values[text]
            return lambda item: value
        name = self.path(token)
        return lambda item: item.get(name)

    def condition(self, text: str) -> Callable[[Item], bool]:
        tokens = self.tokens(text)
        position = 0

        def peek() -> tuple[str, str]:
            return tokens[position] if position < len(tokens) else ("end", "")

        def take() -> tuple[str, str]:
            nonlocal position
            token = peek()
            if token[0] == "end":
                raise invalid(self.operation, f"unexpected end of {text!r}")
            position += 1
            return token

        def keyword(word: str) -> bool:
            return peek()[0] == "word" and peek()[1].upper() == word

        def disjunction() -> Callable[[Item], bool]:
            parts = [conjunction()]
            while keyword("OR"):
                take()
                parts.append(conjunction())
            return lambda item: any(part(item) for part in parts)

        def conjunction() -> Callable[[Item], bool]:
            parts = [negation()]
            while keyword("AND"):
                take()
                parts.append(negation())
            return lambda item: all(part(item) for part in parts)

        def negation() -> Callable[[Item], bool]:
            if keyword("NOT"):
                take()
                inner = negation()
                return lambda item: not inner(item)
            return primary()

        def primary() -> Callable[[Item], bool]:
            token = take()
            if token == ("punct", "("):
                inner = disjunction()
                if take() != ("punct", ")"):
                    raise invalid(self.operation, f"unbalanced parentheses in {text!r}")
                return inner
            if token[0] == "word" and peek() == ("punct", "("):
                if token[1] not in _FUNCTIONS:
                    raise invalid(self.operation, f"Invalid function name; function: {token[1]}")
                take()
                name = self.path(take())
                if take() != ("punct", ")"):
                    raise invalid(self.operation, f"bad function call in {text!r}")
                exists = token[1] == "attribute_exists"
                return lambda item: (name in item) is exists
            left = self.operand(token)
            kind, operator = take()
            if kind != "op":
                raise invalid(self.operation, f"expected a comparator in {text!r}")
            right = self.operand(take())
            return lambda item: _compare(left(item), operator, right(item))

        result = disjunction()
        if peek()[0] != "end":
            raise invalid(self.operation, f"syntax error in {text!r} at {peek()[1]!r}")
        return result

    def update(self, text: str) -> Callable[[Item], None]:
        tokens = self.tokens(text)
        actions: list[Callable[[Item], None]] = []
        seen: set[str] = set()
        position = 0
        while position < len(tokens):
            kind, word = tokens[position]
            section = word.upper() if kind == "word" else ""
            if section not in {"SET", "REMOVE"} or section in seen:
                raise invalid(self.operation, f"Invalid UpdateExpression: {text!r}")
            seen.add(section)
            position += 1
            while True:
                name = self.path(tokens[position])
                position += 1
                if section == "SET":
                    if tokens[position] != ("op", "="):
                        raise invalid(self.operation, f"Invalid UpdateExpression: {text!r}")
                    value, position = self.set_value(tokens, position + 1, text)
                    actions.append(lambda item, name=name, value=value: item.__setitem__(name, value(item)))
                else:
                    actions.append(lambda item, name=name: item.pop(name, None))
                if position < len(tokens) and tokens[position] == ("punct", ","):
                    position += 1
                    continue
                break

        def apply(item: Item) -> None:
            for action in actions:
                action(item)

        return apply

    def set_value(
        self, tokens: list[tuple[str, str]], position: int, text: str
    ) -> tuple[Callable[[Item], dict[str, Any] | None], int]:
        """A SET action's value: an operand, list_append(a, b) or if_not_exists(path, value);
        and the position after it."""
        kind, word = tokens[position]
        if kind != "word" or tokens[position + 1 : position + 2] != [("punct", "(")]:
            return self.operand(tokens[position]), position + 1
        if word not in ("list_append", "if_not_exists"):
            raise invalid(self.operation, f"Invalid function name; function: {word}")
        if word == "if_not_exists" and tokens[position + 2][0] == "value":
            raise invalid(self.operation, "if_not_exists: the first operand must be a document path")
        first, position = self.set_value(tokens, position + 2, text)
        if tokens[position] != ("punct", ","):
            raise invalid(self.operation, f"Invalid UpdateExpression: {text!r}")
        second, position = self.set_value(tokens, position + 1, text)
        if tokens[position] != ("punct", ")"):
            raise invalid(self.operation, f"Invalid UpdateExpression: {text!r}")
        if word == "if_not_exists":
            return (lambda item: first(item) if first(item) is not None else second(item)), position + 1

        def append(item: Item) -> dict[str, Any]:
            head, tail = first(item), second(item)
            if head is None or tail is None or "L" not in head or "L" not in tail:
                raise invalid(self.operation, "list_append: both operands must be lists")
            return {"L": [*head["L"], *tail["L"]]}

        return append, position + 1

    def check_all_used(self) -> None:
        if set(self.names) - self.used_names:
            raise invalid(
                self.operation,
                f"ExpressionAttributeNames unused in expressions: {sorted(set(self.names) - self.used_names)}",
            )
        if set(self.values) - self.used_values:
            raise invalid(
                self.operation,
                f"ExpressionAttributeValues unused in expressions: {sorted(set(self.values) - self.used_values)}",
            )


def _compare(left: dict[str, Any] | None, operator: str, right: dict[str, Any] | None) -> bool:
    if left is None or right is None:
        return False
    ((left_type, left_value),) = left.items()
    ((right_type, right_value),) = right.items()
    if left_type != right_type:
        return operator == "<>"
    if left_type == "N":
        left_value, right_value = Decimal(left_value), Decimal(right_value)
    elif left_type not in {"S", "B"} and operator not in {"=", "<>"}:
        return False
    return {
        "=": left_value == right_value,
        "<>": left_value != right_value,
        "<": left_value < right_value,
        "<=": left_value <= right_value,
        ">": left_value > right_value,
        ">=": left_value >= right_value,
    }[operator]


class Table:
    """One DynamoDB table keyed by pk and sk, in memory (see the module docstring)."""

    def __init__(self, name: str = TABLE, *, returns_old_item_on_failure: bool = True) -> None:
        self.name = name
        self.items: dict[tuple[str, str], Item] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.responses: list[dict[str, Any]] = []
        self.failures: list[ClientError] = []
        # dynalite ignores ReturnValuesOnConditionCheckFailure; DynamoDB and moto honour it.
        self.returns_old_item_on_failure = returns_old_item_on_failure

    # test helpers
    def fail_next(self, code: str, item: Item | None = None) -> None:
        extra = {"Item": item} if item is not None else {}
        self.failures.append(ClientError({"Error": {"Code": code, "Message": code}, **extra}, "Injected"))

    def put(self, item: dict[str, Any]) -> None:
        self.items[(item["pk"], item["sk"])] = serialize(item)

    def get(self, key: dict[str, str]) -> dict[str, Any] | None:
        item = self.items.get((key["pk"], key["sk"]))
        return deserialize(item) if item is not None else None

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.requests]

    # the client's API
    def get_item(self, **params: Any) -> dict[str, Any]:
        key = self._start("GetItem", params)
        item = self.items.get(key)
        if item is None:
            return self._respond({})
        expressions = _Expressions("GetItem", params.get("ExpressionAttributeNames"), None)
        if "ProjectionExpression" in params:
            wanted = [
                expressions.path(token)
                for token in expressions.tokens(params["ProjectionExpression"])
                if token != ("punct", ",")
            ]
            item = {name: value for name, value in item.items() if name in wanted}
        expressions.check_all_used()
        return self._respond({"Item": copy.deepcopy(item)})

    def put_item(self, **params: Any) -> dict[str, Any]:
        self._start("PutItem", params)
        new = params["Item"]
        if not isinstance(new, dict):
            raise invalid("PutItem", "Item must be a map")
        for value in new.values():
            _check_value("PutItem", value)
        key = self._key("PutItem", {"pk": new.get("pk"), "sk": new.get("sk")})
        old = self.items.get(key)
        expressions = _Expressions(
            "PutItem", params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        self._check_condition(expressions, params, old)
        self.items[key] = copy.deepcopy(new)
        return self._respond({})

    def update_item(self, **params: Any) -> dict[str, Any]:
        key = self._start("UpdateItem", params)
        old = self.items.get(key)
        expressions = _Expressions(
            "UpdateItem", params.get("ExpressionAttributeNames"), params.get("ExpressionAttributeValues")
        )
        apply = expressions.update(params["UpdateExpression"])
        self._check_condition(expressions, params, old)
        new = copy.deepcopy(old) if old is not None else dict(params["Key"])
        apply(new)
        self.items[key] = new
        returned = params.get("ReturnValues", "NONE")
        return self._respond({"Attributes": copy.deepcopy(new)} if returned == "ALL_NEW" else {})

    # internals
    def _start(self, operation: str, params: dict[str, Any]) -> tuple[str, str]:
        self.requests.append((operation, params))
        if self.failures:
            raise self.failures.pop(0)
        required, optional = _PARAMETERS[operation]
        if not required <= set(params) or not set(params) <= required | optional:
            raise invalid(operation, f"parameters: {sorted(params)}")
        if any(value is None for value in params.values()):
            raise invalid(operation, "a parameter is null")
        if params["TableName"] != self.name:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, operation)
        if params.get("ReturnValues", "NONE") not in _RETURN_VALUES.get(operation, {"NONE"}):
            raise invalid(operation, f"ReturnValues: {params['ReturnValues']}")
        if params.get("ReturnValuesOnConditionCheckFailure", "NONE") not in {"NONE", "ALL_OLD"}:
            raise invalid(operation, "ReturnValuesOnConditionCheckFailure")
        if "ExpressionAttributeValues" in params and not params["ExpressionAttributeValues"]:
            raise invalid(operation, "ExpressionAttributeValues must not be empty")
        if "ExpressionAttributeNames" in params and not params["ExpressionAttributeNames"]:
            raise invalid(operation, "ExpressionAttributeNames must not be empty")
        return self._key(operation, params["Key"]) if "Key" in params else ("", "")

    def _key(self, operation: str, key: object) -> tuple[str, str]:
        if not isinstance(key, dict) or set(key) != {"pk", "sk"}:
            raise invalid(operation, f"The provided key element does not match the schema: {key!r}")
        parts = [key["pk"], key["sk"]]
        if not all(isinstance(part, dict) and set(part) == {"S"} and part["S"] for part in parts):
            raise invalid(operation, f"The provided key element does not match the schema: {key!r}")
        return parts[0]["S"], parts[1]["S"]

    def _check_condition(self, expressions: _Expressions, params: dict[str, Any], old: Item | None) -> None:
        condition = expressions.condition(params["ConditionExpression"]) if "ConditionExpression" in params else None
        expressions.check_all_used()
        if condition is None or condition(old or {}):
            return
        error: dict[str, Any] = {
            "Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}
        }
        wants_old = params.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD"
        if wants_old and old is not None and self.returns_old_item_on_failure:
            error["Item"] = copy.deepcopy(old)
        raise ClientError(error, "ConditionalCheck")  # type: ignore[arg-type]

    def _respond(self, response: dict[str, Any]) -> dict[str, Any]:
        self.responses.append(response)
        return response


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def table() -> Table:
    return Table()


@pytest.fixture
def repo(table: Table) -> TokenRepository:
    return TokenRepository(TABLE, table)  # type: ignore[arg-type]


def a_record(**fields: Any) -> TokenRecord:
    record = TokenRecord.issue(
        generate_token("lgk"),
        org_id="org-acme",
        owner_id="user-1",
        name="ci",
        scopes=("reports:read", "reports:write"),
        now=NOW - DAY,
        expires_at=NOW + 30 * DAY,
        retention_seconds=RETENTION,
        schedule=Schedule((7, 1)),
    )
    return replace(record, **fields)


def stored_token(repo: TokenRepository, table: Table, **fields: Any) -> TokenRecord:
    record = a_record(**fields)
    repo.put_new_token(record)
    table.requests.clear()
    return record


def item_of(table: Table, token_id: str) -> dict[str, Any] | None:
    return table.get(token_key(token_id))


# -- the table itself -----------------------------------------------------------------------


def test_the_table_is_as_strict_as_dynamodb_where_the_repository_relies_on_it(table: Table) -> None:
    key = serialize(token_key("t1"))
    table.put_item(TableName=TABLE, Item={**key, "n": {"N": "1"}})
    refused = [
        {"UpdateExpression": "SET n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}, ":two": {"N": "2"}}},
        {"UpdateExpression": "SET n = :ONE", "ExpressionAttributeValues": {":one": {"N": "1"}}},
        {"UpdateExpression": "SET n = :one", "ExpressionAttributeValues": {":one": {"n": "1"}}},
        {"UpdateExpression": "SET #n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
        {"UpdateExpression": "XXSET n = :one", "ExpressionAttributeValues": {":one": {"N": "1"}}},
        {
            "UpdateExpression": "SET n = :one",
            "ConditionExpression": "ATTRIBUTE_EXISTS(pk)",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        },
        {
            "UpdateExpression": "SET n = :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "all_new",
        },
        {"UpdateExpression": "REMOVE n", "ExpressionAttributeValues": {}},
    ]
    for extra in refused:
        with pytest.raises(ClientError) as raised:
            table.update_item(TableName=TABLE, Key=key, **extra)
        assert raised.value.response["Error"]["Code"] == "ValidationException", extra
    # Keywords are case-insensitive, attribute and function names are not.
    table.update_item(
        TableName=TABLE,
        Key=key,
        UpdateExpression="set m = :one",
        ConditionExpression="attribute_exists(pk) and n = :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert table.get(token_key("t1")) == {"pk": "TOKEN#t1", "sk": "TOKEN", "n": 1, "m": 1}
    with pytest.raises(ClientError) as raised:
        table.update_item(
            TableName=TABLE, Key=key, UpdateExpression="REMOVE m", ConditionExpression="attribute_exists(PK)"
        )
    assert raised.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


# -- active sets: one slot per create, written from the version read --------------------------


def test_the_first_slot_is_written_when_the_user_has_no_set(repo: TokenRepository) -> None:
    active = ActiveSet(tokens={"a" * 16: Slot(expires_at=NOW + DAY, reserved_at=NOW)})
    repo.reserve_slot("org-acme", "user-1", active, read_version=0)
    assert repo.get_active_set("org-acme", "user-1") == ActiveSet(tokens=active.tokens, version=1)
    assert repo.get_active_set("org-acme", "user-2") == ActiveSet()
    assert repo.get_active_set("org-globex", "user-1") == ActiveSet()


def test_a_set_is_written_only_from_the_version_read(repo: TokenRepository, table: Table) -> None:
    first = ActiveSet(tokens={"a" * 16: Slot(expires_at=NOW + DAY, reserved_at=NOW)})
    repo.reserve_slot("org-acme", "user-1", first, read_version=0)
    second = ActiveSet(tokens={**first.tokens, "b" * 16: Slot(expires_at=NOW + 2 * DAY, reserved_at=NOW + 1)})
    repo.reserve_slot("org-acme", "user-1", second, read_version=1)
    assert repo.get_active_set("org-acme", "user-1") == ActiveSet(tokens=second.tokens, version=2)
    # A racing create that read version 1 (or read no set at all) loses, and changes nothing.
    for stale in (1, 0, 3):
        with pytest.raises(ActiveSetChanged):
            repo.reserve_slot("org-acme", "user-1", first, read_version=stale)
    assert repo.get_active_set("org-acme", "user-1") == ActiveSet(tokens=second.tokens, version=2)


# -- new tokens ---------------------------------------------------------------------------------


def test_a_new_token_is_stored_whole(repo: TokenRepository, table: Table) -> None:
    record = a_record()
    repo.put_new_token(record)
    assert repo.get_token(record.token_id) == record


def test_a_taken_id_is_refused_and_the_token_holding_it_is_kept(repo: TokenRepository) -> None:
    record = a_record()
    repo.put_new_token(record)
    with pytest.raises(TokenIdTaken):
        repo.put_new_token(replace(record, org_id="org-globex", owner_id="intruder", secret_hash="0" * 64))
    assert repo.get_token(record.token_id) == record


# -- last use ---------------------------------------------------------------------------------


def test_a_use_is_recorded_when_the_token_was_never_used_and_the_address_cut_to_64(
    repo: TokenRepository, table: Table
) -> None:
    record = stored_token(repo, table)
    repo.record_use(record.token_id, NOW, "2001:db8::" + "f" * 100, not_since=NOW - 600)
    stored = repo.get_token(record.token_id)
    assert stored == replace(record, last_used_at=NOW, last_used_ip=("2001:db8::" + "f" * 100)[:64])
    assert len(stored.last_used_ip or "") == 64


def test_a_use_is_recorded_only_when_the_last_one_is_older_than_the_bound(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table, last_used_at=NOW - 601, last_used_ip="198.51.100.1")
    repo.record_use(record.token_id, NOW, "203.0.113.9", not_since=NOW - 600)
    assert repo.get_token(record.token_id) == replace(record, last_used_at=NOW, last_used_ip="203.0.113.9")
    # Recorded at or after the bound by a concurrent request: this one writes nothing.
    for last_used_at in (NOW - 600, NOW - 10):
        record = stored_token(repo, table, last_used_at=last_used_at, last_used_ip="198.51.100.1")
        repo.record_use(record.token_id, NOW, "203.0.113.9", not_since=NOW - 600)
        assert repo.get_token(record.token_id) == record


def test_a_use_without_an_address_keeps_the_last_known_one(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table, last_used_at=NOW - DAY, last_used_ip="198.51.100.1")
    repo.record_use(record.token_id, NOW, None, not_since=NOW - 600)
    assert repo.get_token(record.token_id) == replace(record, last_used_at=NOW)


def test_a_use_of_a_purged_token_creates_nothing(repo: TokenRepository, table: Table) -> None:
    repo.record_use("z" * 16, NOW, "203.0.113.9", not_since=NOW - 600)
    assert table.items == {}


def test_a_use_that_fails_for_another_reason_is_reported(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    table.fail_next("ProvisionedThroughputExceededException")
    with pytest.raises(StoreUnavailable):
        repo.record_use(record.token_id, NOW, None, not_since=NOW - 600)
    table.fail_next("AccessDeniedException")
    with pytest.raises(StoreFailure):
        repo.record_use(record.token_id, NOW, None, not_since=NOW - 600)


# -- revoke -----------------------------------------------------------------------------------


def revoked_copy(record: TokenRecord, at: int, by: str, ttl: int) -> TokenRecord:
    return replace(record, revoked_at=at, revoked_by=by, ttl=ttl, lifecycle_stage=PURGE, lifecycle_due=ttl)


def assert_purge_keys(table: Table, token_id: str, ttl: int) -> None:
    item = item_of(table, token_id)
    assert item is not None
    purge = lifecycle_keys(PURGE, ttl, token_id)
    assert (item["gsi3pk"], item["gsi3sk"], item["lifecycle_due"], item["ttl"]) == (
        purge["gsi3pk"],
        purge["gsi3sk"],
        ttl,
        ttl,
    )


def test_a_revoke_marks_the_token_and_schedules_its_purge(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    ttl = NOW + RETENTION
    outcome = repo.revoke(record.token_id, "org-acme", "user-1", NOW, "user-1", ttl)
    assert outcome.newly_revoked is True
    assert outcome.record == revoked_copy(record, NOW, "user-1", ttl)
    assert repo.get_token(record.token_id) == outcome.record
    assert_purge_keys(table, record.token_id, ttl)


def test_revoking_again_answers_with_the_first_revoke_without_a_second_read(
    repo: TokenRepository, table: Table
) -> None:
    record = stored_token(repo, table)
    first = repo.revoke(record.token_id, "org-acme", None, NOW, "user-admin", NOW + RETENTION)
    table.requests.clear()
    again = repo.revoke(record.token_id, "org-acme", "user-1", NOW + 50, "user-1", NOW + 50 + RETENTION)
    assert again.newly_revoked is False
    assert again.record == first.record  # revoked_at, revoked_by and ttl of the first revoke
    assert table.operations() == ["UpdateItem"]  # the failed condition returned the item


def test_a_revoke_pins_the_organisation_and_the_owner(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    for org_id, owner_id in (("org-globex", None), ("org-globex", "user-1"), ("org-acme", "user-2")):
        with pytest.raises(TokenNotFound):
            repo.revoke(record.token_id, org_id, owner_id, NOW, "intruder", NOW + RETENTION)
        with pytest.raises(TokenNotFound):
            repo.revoke_quietly(record.token_id, org_id, owner_id, NOW, "intruder", NOW + RETENTION)
    assert repo.get_token(record.token_id) == record
    # An admin of the organisation (no owner pinned) may revoke anyone's token.
    assert repo.revoke(record.token_id, "org-acme", None, NOW, "user-admin", NOW + RETENTION).newly_revoked


def test_a_revoke_never_creates_an_item(repo: TokenRepository, table: Table) -> None:
    with pytest.raises(TokenNotFound):
        repo.revoke("m" * 16, "org-acme", None, NOW, "user-admin", NOW + RETENTION)
    with pytest.raises(TokenNotFound):
        repo.revoke_quietly("m" * 16, "org-acme", "user-1", NOW, "user-1", NOW + RETENTION)
    assert table.items == {}


def test_a_revoke_that_fails_for_a_reason_the_item_does_not_show_is_a_conflict(
    repo: TokenRepository, table: Table
) -> None:
    record = stored_token(repo, table)
    table.fail_next("ConditionalCheckFailedException", item=table.items[("TOKEN#" + record.token_id, "TOKEN")])
    with pytest.raises(ConcurrentModification):
        repo.revoke(record.token_id, "org-acme", "user-1", NOW, "user-1", NOW + RETENTION)


def test_without_the_old_item_in_the_error_a_read_tells_why_a_revoke_failed(repo: TokenRepository) -> None:
    table = Table(returns_old_item_on_failure=False)  # as dynalite
    repo = TokenRepository(TABLE, table)  # type: ignore[arg-type]
    record = stored_token(repo, table, revoked_at=NOW - 5, revoked_by="user-1")
    outcome = repo.revoke(record.token_id, "org-acme", "user-1", NOW, "user-1", NOW + RETENTION)
    assert outcome.newly_revoked is False
    assert outcome.record == record
    assert table.operations() == ["UpdateItem", "GetItem"]
    with pytest.raises(TokenNotFound):
        repo.revoke(record.token_id, "org-globex", None, NOW, "intruder", NOW + RETENTION)


def test_a_quiet_revoke_answers_whether_it_revoked_and_asks_for_no_item(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    ttl = NOW + RETENTION
    assert repo.revoke_quietly(record.token_id, "org-acme", "user-1", NOW, "bulk", ttl) is True
    assert table.responses[-1] == {}  # ReturnValues NONE: nothing to send back, nothing to parse
    assert repo.get_token(record.token_id) == revoked_copy(record, NOW, "bulk", ttl)
    assert_purge_keys(table, record.token_id, ttl)
    assert repo.revoke_quietly(record.token_id, "org-acme", "user-1", NOW + 1, "bulk", ttl + 1) is False
    assert repo.get_token(record.token_id) == revoked_copy(record, NOW, "bulk", ttl)


def test_an_unexpected_error_during_a_revoke_is_reported(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    table.fail_next("ThrottlingException")
    with pytest.raises(StoreUnavailable):
        repo.revoke(record.token_id, "org-acme", None, NOW, "user-admin", NOW + RETENTION)
    table.fail_next("TransactionConflictException")
    with pytest.raises(ConcurrentModification):
        repo.revoke_quietly(record.token_id, "org-acme", None, NOW, "user-admin", NOW + RETENTION)


# -- the unused-token policy -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "revoked"),
    [
        pytest.param({"created_at": NOW - 31 * DAY}, True, id="never-used-created-before"),
        pytest.param({"created_at": NOW - 30 * DAY}, True, id="never-used-created-at-the-bound"),
        pytest.param({"created_at": NOW - 30 * DAY + 1}, False, id="never-used-created-after"),
        pytest.param({"created_at": NOW - 90 * DAY, "last_used_at": NOW - 30 * DAY}, True, id="used-at-the-bound"),
        pytest.param({"created_at": NOW - 90 * DAY, "last_used_at": NOW - 31 * DAY}, True, id="used-before"),
        pytest.param({"created_at": NOW - 90 * DAY, "last_used_at": NOW - 30 * DAY + 1}, False, id="used-since"),
        pytest.param({"created_at": NOW - 90 * DAY, "revoked_at": NOW - DAY, "revoked_by": "x"}, False, id="revoked"),
    ],
)
def test_the_unused_policy_revokes_only_tokens_unused_since_the_bound(
    repo: TokenRepository, table: Table, fields: dict[str, Any], revoked: bool
) -> None:
    record = stored_token(repo, table, **fields)
    since, ttl = NOW - 30 * DAY, NOW + RETENTION
    assert repo.revoke_unused(record.token_id, "org-acme", since, NOW, ttl) is revoked
    assert table.responses[-1] == {}  # the cleanup asks for no item back (ReturnValues NONE)
    after = repo.get_token(record.token_id)
    assert after == (revoked_copy(record, NOW, UNUSED_POLICY_ACTOR, ttl) if revoked else record)
    if revoked:
        assert_purge_keys(table, record.token_id, ttl)


def test_the_unused_policy_never_reaches_another_organisation_or_creates_an_item(
    repo: TokenRepository, table: Table
) -> None:
    record = stored_token(repo, table, created_at=NOW - 90 * DAY)
    assert repo.revoke_unused(record.token_id, "org-globex", NOW - 30 * DAY, NOW, NOW + RETENTION) is False
    assert repo.get_token(record.token_id) == record
    assert repo.revoke_unused("m" * 16, "org-acme", NOW - 30 * DAY, NOW, NOW + RETENTION) is False
    assert item_of(table, "m" * 16) is None


# -- disable and enable ------------------------------------------------------------------------


def test_disabling_a_live_token_once(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    disabled = replace(record, disabled_at=NOW, disabled_by="user-1")
    assert repo.set_disabled(record.token_id, "org-acme", "user-1", NOW, "user-1") == (disabled, True)
    assert repo.set_disabled(record.token_id, "org-acme", "user-1", NOW + 5, "user-2") == (disabled, False)
    assert repo.get_token(record.token_id) == disabled
    assert table.operations() == ["UpdateItem", "UpdateItem", "GetItem"]  # no read to explain the second


def test_only_a_live_token_is_disabled(repo: TokenRepository, table: Table) -> None:
    for fields in ({"expires_at": NOW}, {"expires_at": NOW - 1}, {"revoked_at": NOW - 1, "revoked_by": "x"}):
        record = stored_token(repo, table, **fields)
        assert repo.set_disabled(record.token_id, "org-acme", "user-1", NOW, "user-1") == (record, False)
        assert repo.get_token(record.token_id) == record
    record = stored_token(repo, table, expires_at=NOW + 1)  # one second left: still live
    assert repo.set_disabled(record.token_id, "org-acme", None, NOW, "user-admin")[1] is True


def test_disable_and_enable_pin_the_organisation_and_the_owner(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    for org_id, owner_id in (("org-globex", None), ("org-acme", "user-2"), ("org-globex", "user-1")):
        with pytest.raises(TokenNotFound):
            repo.set_disabled(record.token_id, org_id, owner_id, NOW, "intruder")
    assert repo.get_token(record.token_id) == record
    repo.set_disabled(record.token_id, "org-acme", None, NOW, "user-admin")
    with pytest.raises(TokenNotFound):
        repo.set_enabled(record.token_id, "org-acme", "user-2", NOW)
    with pytest.raises(TokenNotFound):
        repo.set_enabled(record.token_id, "org-globex", None, NOW)
    with pytest.raises(TokenNotFound):
        repo.set_disabled("m" * 16, "org-acme", None, NOW, "user-admin")
    with pytest.raises(TokenNotFound):
        repo.set_enabled("m" * 16, "org-acme", "user-1", NOW)
    assert item_of(table, "m" * 16) is None


def test_enabling_a_disabled_live_token_once(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table, disabled_at=NOW - 10, disabled_by="user-admin")
    enabled = replace(record, disabled_at=None, disabled_by=None)
    assert repo.set_enabled(record.token_id, "org-acme", "user-1", NOW) == (enabled, True)
    assert repo.set_enabled(record.token_id, "org-acme", None, NOW) == (enabled, False)
    assert repo.get_token(record.token_id) == enabled
    expired = stored_token(repo, table, disabled_at=NOW - 10, disabled_by="x", expires_at=NOW)
    assert repo.set_enabled(expired.token_id, "org-acme", "user-1", NOW) == (expired, False)


def test_without_the_old_item_in_the_error_a_read_explains_a_refused_disable() -> None:
    table = Table(returns_old_item_on_failure=False)
    repo = TokenRepository(TABLE, table)  # type: ignore[arg-type]
    record = stored_token(repo, table, revoked_at=NOW - 1, revoked_by="x")
    assert repo.set_disabled(record.token_id, "org-acme", "user-1", NOW, "user-1") == (record, False)
    assert table.operations() == ["UpdateItem", "GetItem"]
    with pytest.raises(TokenNotFound):
        repo.set_disabled(record.token_id, "org-acme", "user-2", NOW, "user-2")


# -- rotation ---------------------------------------------------------------------------------


def test_a_rotated_token_links_its_successor_and_takes_its_shortened_schedule(
    repo: TokenRepository, table: Table
) -> None:
    old = stored_token(repo, table)
    expires_at, ttl = NOW + 3600, NOW + 3600 + RETENTION
    repo.mark_rotated(old, "s" * 16, expires_at, (EXPIRED, expires_at), ttl)
    stage = lifecycle_keys(EXPIRED, expires_at, old.token_id)
    assert repo.get_token(old.token_id) == replace(
        old, rotated_to="s" * 16, expires_at=expires_at, ttl=ttl, lifecycle_stage=EXPIRED, lifecycle_due=expires_at
    )
    item = item_of(table, old.token_id)
    assert item is not None
    assert (item["gsi3pk"], item["gsi3sk"]) == (stage["gsi3pk"], stage["gsi3sk"])


@pytest.mark.parametrize(
    ("stored_fields", "read_fields"),
    [
        pytest.param({"rotated_to": "r" * 16}, {}, id="already-rotated"),
        pytest.param({"revoked_at": NOW - 1, "revoked_by": "x"}, {}, id="revoked"),
        pytest.param({"disabled_at": NOW - 1, "disabled_by": "x"}, {}, id="disabled"),
        pytest.param({"expires_at": NOW + 99}, {"expires_at": NOW + 30 * DAY}, id="expiry-changed-since-read"),
        pytest.param({}, {"org_id": "org-globex"}, id="other-organisation"),
        pytest.param({}, {"owner_id": "user-2"}, id="other-owner"),
    ],
)
def test_a_token_is_rotated_only_as_it_was_read(
    repo: TokenRepository, table: Table, stored_fields: dict[str, Any], read_fields: dict[str, Any]
) -> None:
    stored = stored_token(repo, table, **stored_fields)
    with pytest.raises(ConditionNotMet):
        repo.mark_rotated(replace(stored, **read_fields), "s" * 16, NOW + 60, (EXPIRED, NOW + 60), NOW + 60 + RETENTION)
    assert repo.get_token(stored.token_id) == stored


def test_rotating_a_purged_token_creates_nothing(repo: TokenRepository, table: Table) -> None:
    with pytest.raises(ConditionNotMet):
        repo.mark_rotated(a_record(), "s" * 16, NOW + 60, (PURGE, NOW + 60 + RETENTION), NOW + 60 + RETENTION)
    assert table.items == {}


# -- membership changes: scopes, the unused policy's copy, the member registry ------------------


def test_scopes_are_narrowed_on_an_unrevoked_token_of_the_organisation(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    assert repo.set_scopes(record.token_id, "org-acme", ("reports:read",)) is True
    assert repo.get_token(record.token_id) == replace(record, scopes=("reports:read",))
    revoked = stored_token(repo, table, revoked_at=NOW - 1, revoked_by="x")
    assert repo.set_scopes(revoked.token_id, "org-acme", ()) is False
    assert repo.get_token(revoked.token_id) == revoked
    assert repo.set_scopes(record.token_id, "org-globex", ()) is False
    assert repo.get_token(record.token_id) == replace(record, scopes=("reports:read",))
    assert repo.set_scopes("m" * 16, "org-acme", ()) is False
    assert item_of(table, "m" * 16) is None


def test_the_unused_policy_is_copied_onto_existing_tokens_only(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    repo.stamp_unused_policy(record.token_id, 45)
    assert repo.get_token(record.token_id) == replace(record, unused_after_days=45)
    repo.stamp_unused_policy(record.token_id, None)
    assert repo.get_token(record.token_id) == replace(record, unused_after_days=None)
    repo.stamp_unused_policy("m" * 16, 45)
    repo.stamp_unused_policy("m" * 16, None)
    assert item_of(table, "m" * 16) is None


def test_a_member_is_remembered_once_unless_replaced(repo: TokenRepository, table: Table) -> None:
    repo.remember_member(Member("org-acme", "user-1", "admin"), replace=False)
    expected = {**member_key("org-acme", "user-1"), "org_id": "org-acme", "user_id": "user-1"}
    assert table.get(member_key("org-acme", "user-1")) == {**expected, "role": "admin"}
    repo.remember_member(Member("org-acme", "user-1", "viewer"), replace=False)  # a create: keeps the role
    assert table.get(member_key("org-acme", "user-1")) == {**expected, "role": "admin"}
    repo.remember_member(Member("org-acme", "user-1", "viewer"), replace=True)  # a membership change
    assert table.get(member_key("org-acme", "user-1")) == {**expected, "role": "viewer"}


# -- the create path on this table: no token reaches any log line, DEBUG included -------------


@pytest.fixture
def service_on(table: Table, monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    """The management functions' service, wired to the in-memory table instead of DynamoDB."""
    wiring.reset()
    monkeypatch.setattr(wiring, "dynamodb_client", lambda *args, **kwargs: table)
    yield table
    wiring.reset()


def test_minting_through_the_create_handler_logs_no_token_at_any_level(
    service_on: Table, service_log: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    console = Console(Identity(user_id="user-1", org_id="org-acme", role="member"))
    response = console.create(name="log check", scopes=["reports:read"])
    assert response.status == 201, response.body
    token = response.json()["token"]
    assert TOKEN_IN_TEXT.fullmatch(token)
    assert TOKEN_IN_TEXT.search(response.body)  # the scan would see it, were it logged
    logged = service_log.getvalue() + caplog.text
    assert token not in logged
    # slot, token, member, and the audit record the creation appends to the chain
    assert [operation for operation, _ in service_on.requests].count("PutItem") == 4


# -- the audit outbox: each change's entry is written with the change --------------------------


def an_entry(token_id: str, action: AuditAction = AuditAction.REVOKED) -> AuditEntry:
    return AuditEntry("org-acme", action, "user-1", token_id, (token_id,), NOW, "203.0.113.9", {"kind": "single"})


def outbox_of(table: Table, token_id: str) -> tuple[list[str], str | None]:
    item = table.get(token_key(token_id)) or {}
    return list(item.get("audit_outbox", [])), item.get("audit_org")


def test_a_new_token_is_written_with_its_audit_entry(repo: TokenRepository, table: Table) -> None:
    record = a_record()
    entry = an_entry(record.token_id, AuditAction.CREATED)
    repo.put_new_token(record, entry)
    assert outbox_of(table, record.token_id) == ([entry.to_json()], "org-acme")
    assert repo.get_token(record.token_id) == record  # the outbox is no part of the token


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda repo, token_id, entry: repo.revoke(token_id, "org-acme", None, NOW, "u", 1, entry), id="revoke"
        ),
        pytest.param(
            lambda repo, token_id, entry: repo.revoke_quietly(token_id, "org-acme", "user-1", NOW, "u", 1, entry),
            id="quiet-revoke",
        ),
        pytest.param(
            lambda repo, token_id, entry: repo.revoke_unused(token_id, "org-acme", NOW, NOW, 1, entry), id="unused"
        ),
        pytest.param(
            lambda repo, token_id, entry: repo.set_disabled(token_id, "org-acme", None, NOW, "u", entry), id="disable"
        ),
        pytest.param(
            lambda repo, token_id, entry: repo.set_scopes(token_id, "org-acme", ("reports:read",), entry), id="scopes"
        ),
    ],
)
def test_each_change_appends_its_audit_entry_in_the_same_write_and_a_refused_one_none(
    repo: TokenRepository, table: Table, change: Callable[[TokenRepository, str, AuditEntry], object]
) -> None:
    record = stored_token(repo, table)
    waiting = an_entry(record.token_id, AuditAction.CREATED)  # an earlier change's, not yet chained
    table.items[("TOKEN#" + record.token_id, "TOKEN")].update(
        serialize({"audit_outbox": [waiting.to_json()], "audit_org": "org-acme"})
    )
    entry = an_entry(record.token_id)
    change(repo, record.token_id, entry)
    assert table.operations() == ["UpdateItem"]  # one write: the change and its entry
    assert outbox_of(table, record.token_id) == ([waiting.to_json(), entry.to_json()], "org-acme")
    # A change refused by its condition (the token is revoked) writes no entry either.
    revoked = stored_token(repo, table, revoked_at=NOW - 1, revoked_by="x")
    with contextlib.suppress(TokenNotFound, ConditionNotMet):
        change(repo, revoked.token_id, an_entry(revoked.token_id))
    assert outbox_of(table, revoked.token_id) == ([], None)


def test_enabling_appends_its_entry_to_the_disables(repo: TokenRepository, table: Table) -> None:
    record = stored_token(repo, table)
    disable, enable = an_entry(record.token_id, AuditAction.DISABLED), an_entry(record.token_id, AuditAction.ENABLED)
    repo.set_disabled(record.token_id, "org-acme", "user-1", NOW, "user-1", disable)
    repo.set_enabled(record.token_id, "org-acme", "user-1", NOW, enable)
    assert outbox_of(table, record.token_id) == ([disable.to_json(), enable.to_json()], "org-acme")
    assert repo.get_token(record.token_id) == record  # enabled again, nothing else changed
