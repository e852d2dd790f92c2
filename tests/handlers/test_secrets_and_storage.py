"""The secret is shown once and stored nowhere; storage faults answer 503 (retry) or a generic 500."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber

from token_service import wiring
from token_service.domain.token_format import ID_LENGTH, parse_token, token_regex
from token_service.storage.attribute_values import deserialize

TABLE_NAME = os.environ["TABLE_NAME"]
PREFIX = "lgk_"
SECRET_PATTERN = re.compile(token_regex("lgk"))

Console = Any  # tests/conftest.py's Console


def secret_part(token: str) -> str:
    """What follows the prefix and the public id: the random secret and the checksum."""
    return token[len(PREFIX) + ID_LENGTH :]


def assert_no_secret(text: str, tokens: list[str]) -> None:
    assert not SECRET_PATTERN.search(text), "something shaped like a token was exposed"
    for token in tokens:
        assert token not in text
        assert secret_part(token) not in text


# -- the secret is shown once -------------------------------------------------------------


def test_the_create_response_carries_a_well_formed_secret(member: Console) -> None:
    response = member.create("build uploads", ["import:builds"])

    assert response.status == 201, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    created = response.json()
    token = created["token"]
    assert re.fullmatch(token_regex("lgk"), token)
    assert parse_token(token, "lgk").token_id == created["token_id"] == token[len(PREFIX) : len(PREFIX) + ID_LENGTH]
    assert created["display_hint"] == f"lgk_…{token[-4:]}"
    assert "secret_hash" not in created
    assert created["warning"]


def test_the_secret_appears_in_no_other_response_nor_in_the_logs(
    admin: Console, member: Console, captured_logs: Callable[[], str]
) -> None:
    created = [member.create_ok(name=f"token {index}") for index in range(3)]
    created.append(admin.create_ok(name="admin's"))
    tokens = [token["token"] for token in created]
    ids = [token["token_id"] for token in created]
    hashes = [hashlib.sha256(token.encode()).hexdigest() for token in tokens]

    responses = [
        member.request("GET", "/tokens"),
        member.request("GET", "/tokens", query={"status": "active"}),
        member.request("GET", f"/tokens/{ids[0]}"),
        admin.request("GET", "/tokens", query={"all_users": "true"}),
        admin.request("GET", "/tokens", query={"owner_id": "user-member"}),
        admin.request("GET", f"/tokens/{ids[1]}"),
        member.request("DELETE", f"/tokens/{ids[0]}"),
        member.request("DELETE", f"/tokens/{ids[0]}"),
        member.request("POST", "/tokens/revoke", body={"token_ids": [ids[1], ids[0]]}),
        member.request("GET", "/tokens", query={"status": "revoked"}),
        member.request("POST", "/tokens/revoke", body={"owner_id": "user-member"}),
        admin.request("POST", "/tokens/revoke", body={"organisation": True}),
        admin.request("GET", "/tokens", query={"all_users": "true", "status": "revoked"}),
        member.request("GET", "/scopes"),
        member.request("GET", "/settings"),
    ]

    for response in responses:
        assert response.status == 200, response.body
        exposed = response.body + json.dumps(response.headers)
        assert_no_secret(exposed, tokens)
        assert "secret_hash" not in exposed
        assert not any(value in exposed for value in hashes)
    log_text = captured_logs()
    assert f'"token_id":"{ids[0]}"' in log_text, "the structured logs must be captured for this test to mean anything"
    assert_no_secret(log_text, tokens)
    service_lines = [line for line in log_text.splitlines() if line.startswith("{")]
    assert not any(value in line for line in service_lines for value in hashes)


def test_a_failed_create_logs_no_secret(
    member: Console, captured_logs: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    member.create_ok()
    writes = fail_writes(monkeypatch, wiring.get_service().repository.client, "AccessDeniedException", 400)

    response = member.create()

    assert writes, "the create must have tried to write"
    assert response.status == 500
    log_text = captured_logs()
    assert "Storage failure" in log_text
    assert not SECRET_PATTERN.search(log_text + response.body)


def test_a_pasted_secret_is_not_echoed_by_bulk_revoke(member: Console) -> None:
    """Someone who found a leaked token pastes it where an id is expected: the answer must
    not copy the secret into yet another response body."""
    created = member.create_ok()

    response = member.request("POST", "/tokens/revoke", body={"token_ids": [created["token"]]})

    assert response.status in (200, 400), response.body
    assert_no_secret(response.body, [created["token"]])


# -- storage holds only the hash ----------------------------------------------------------


def scan_all(dynamodb: Any) -> list[dict[str, Any]]:
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True):
        items.extend(deserialize(raw) for raw in page["Items"])
    return items


def flatten(value: Any) -> Iterator[str]:
    """Every string in an item: attribute names, values, map keys, list and set members."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from flatten(inner)
    elif isinstance(value, list | set | tuple):
        for inner in value:
            yield from flatten(inner)
    elif isinstance(value, bytes | bytearray):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, str | int | Decimal):
        yield str(value)


def test_the_table_holds_only_a_sha256_of_the_secret(admin: Console, member: Console, dynamodb: Any) -> None:
    created = [member.create_ok(name=f"token {index}") for index in range(3)]
    created.append(admin.create_ok(name="admin's", scopes=["import:teams"]))
    member.request("DELETE", f"/tokens/{created[0]['token_id']}")
    member.request("POST", "/tokens/revoke", body={"token_ids": [created[1]["token_id"]]})
    admin.request(
        "PUT",
        "/settings",
        body={"max_lifetime_days": 200, "default_lifetime_days": 30, "max_active_tokens_per_user": 20},
    )

    items = scan_all(dynamodb)
    strings = [text for item in items for text in flatten(item)]

    # Tokens, users' active sets, the policy, the registry of token owners (MEMBERS), and the
    # audit chain (its head and one record per change).
    audit = [item for item in items if item["pk"].startswith("AUDIT#")]
    assert {item["sk"] for item in audit} == {"HEAD", *(f"REC#{seq:012d}" for seq in range(1, 8))}
    assert {item["sk"] for item in items if item["pk"] != "MEMBERS" and item not in audit} == {
        "TOKEN",
        "ACTIVE_TOKENS",
        "POLICY",
    }
    assert all(set(item) == {"pk", "sk", "org_id", "user_id", "role"} for item in items if item["pk"] == "MEMBERS")
    for token in (entry["token"] for entry in created):
        secret = secret_part(token)
        slices = {secret[start : start + 8] for start in range(len(secret) - 7)}
        for text in strings:
            assert token not in text
            assert not any(piece in text for piece in slices), "a slice of the secret is stored"
    stored = {item["token_id"]: item for item in items if item["sk"] == "TOKEN"}
    for entry in created:
        item = stored[entry["token_id"]]
        assert item["secret_hash"] == hashlib.sha256(entry["token"].encode("ascii")).hexdigest()
        assert item["hash_version"] == 1


# -- injected DynamoDB faults -------------------------------------------------------------

FAULT_MESSAGE = (
    f"User: arn:aws:sts::123456789012:assumed-role/x is not authorized on "
    f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE_NAME} (Requested resource zq-sentinel)"
)
FAULTS = [
    ("ProvisionedThroughputExceededException", 400, 503),
    ("ThrottlingException", 400, 503),
    ("InternalServerError", 500, 503),
    ("ResourceNotFoundException", 400, 500),
    ("AccessDeniedException", 400, 500),
]
WRITE_METHODS = {
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "transact_write_items": "TransactWriteItems",
    "batch_write_item": "BatchWriteItem",
}


def fail_writes(monkeypatch: pytest.MonkeyPatch, client: Any, code: str, http_status: int) -> list[str]:
    """Every write fails with `code` while reads still reach the table, however create happens
    to write (a transaction, or conditional puts). Returns the writes attempted."""
    attempted: list[str] = []

    def failing(operation: str) -> Callable[..., Any]:
        def call(**_: Any) -> Any:
            attempted.append(operation)
            error = {"Code": code, "Message": FAULT_MESSAGE}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": http_status}}, operation)

        return call

    for method, operation in WRITE_METHODS.items():
        monkeypatch.setattr(client, method, failing(operation))
    return attempted


def stub_first_call(stubber: Stubber, operation: str, code: str, http_status: int) -> None:
    """Makes the operation's first DynamoDB call fail."""
    first_call = {
        "list": "query",
        "get": "get_item",
        "revoke": "update_item",
        "bulk_revoke": "update_item",
        "create": "get_item",  # the organisation's policy
    }[operation]
    stubber.add_client_error(first_call, code, FAULT_MESSAGE, http_status)


def call_operation(console: Console, operation: str, token_id: str) -> Any:
    if operation == "list":
        return console.request("GET", "/tokens")
    if operation == "get":
        return console.request("GET", f"/tokens/{token_id}")
    if operation == "revoke":
        return console.request("DELETE", f"/tokens/{token_id}")
    if operation == "bulk_revoke":
        return console.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})
    return console.create()


def assert_generic_failure(response: Any, status: int, code: str) -> None:
    assert response.status == status, response.body
    error = response.json()["error"]
    expected_code = "service_unavailable" if status == 503 else "internal_error"
    assert error["code"] == expected_code
    assert set(error) == {"code", "message"}
    for leak in (TABLE_NAME, "zq-sentinel", "arn:aws", code, "DynamoDB", "dynamodb", "Traceback"):
        assert leak not in response.body
    if status == 503:
        assert int(response.headers["Retry-After"]) >= 1
    else:
        assert "Retry-After" not in response.headers


@pytest.mark.parametrize("operation", ["list", "get", "revoke", "bulk_revoke", "create"])
@pytest.mark.parametrize(("code", "http_status", "status"), FAULTS)
def test_dynamodb_faults(
    member: Console,
    captured_logs: Callable[[], str],
    operation: str,
    code: str,
    http_status: int,
    status: int,
) -> None:
    token = member.create_ok()
    client = wiring.get_service().repository.client

    with Stubber(client) as stubber:
        stub_first_call(stubber, operation, code, http_status)
        response = call_operation(member, operation, token["token_id"])
        stubber.assert_no_pending_responses()

    assert_generic_failure(response, status, code)
    assert "Storage failure" in captured_logs(), "operators need the failure in the logs"
    # Nothing was cached in a broken state: the same call works once DynamoDB recovers.
    recovered = call_operation(member, operation, token["token_id"])
    assert recovered.status in (200, 201), recovered.body


@pytest.mark.parametrize(("code", "http_status", "status"), FAULTS)
def test_dynamodb_faults_while_create_writes(
    member: Console, monkeypatch: pytest.MonkeyPatch, code: str, http_status: int, status: int
) -> None:
    member.create_ok()

    with monkeypatch.context() as patch:
        writes = fail_writes(patch, wiring.get_service().repository.client, code, http_status)
        response = member.create()

    assert writes, "the create must have tried to write"
    assert_generic_failure(response, status, code)
    assert member.create().status == 201


@pytest.mark.parametrize("operation", ["list", "get", "revoke", "create"])
def test_a_dynamodb_timeout_is_retryable(member: Console, monkeypatch: pytest.MonkeyPatch, operation: str) -> None:
    token = member.create_ok()
    client = wiring.get_service().repository.client
    method = {"list": "query", "get": "get_item", "revoke": "update_item", "create": "get_item"}[operation]

    def timeout(**_: Any) -> Any:
        raise ReadTimeoutError(endpoint_url=f"https://dynamodb.us-east-1.amazonaws.com/{TABLE_NAME}")

    monkeypatch.setattr(client, method, timeout)
    response = call_operation(member, operation, token["token_id"])

    assert_generic_failure(response, 503, "ReadTimeoutError")
