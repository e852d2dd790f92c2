"""The OpenAPI document states the rules the handlers enforce, from the same constraints.

The served document (devserver.openapi) is built from the request models; these tests check
that what it says is what the models do: the limits, the patterns (name, user ids, dates),
the catalog's enums, bulk revoke's one-of selectors, integers, and that every operation lists
its error answers and its security scheme. Schemathesis then holds the running server to the
document (tests/system/test_fuzz_api.py).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from pydantic import BaseModel, ValidationError

from devserver.openapi import openapi_document
from token_service.domain.scopes import default_catalog
from token_service.http import models
from token_service.http.models import (
    GRACE_PERIODS,
    MAX_IDS_PER_BULK_REVOKE,
    MAX_SCOPES_PER_TOKEN,
    NAME_MAX_LENGTH,
    BulkRevokeRequest,
    CreateTokenRequest,
    PolicyUpdate,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_document("http://localhost:3000")


def schema_of(document: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as the document has it, references resolvable."""
    return {**document["components"]["schemas"][model.__name__], "$defs": document["components"]["schemas"]}


def validator(document: dict[str, Any], model: type[BaseModel]) -> Any:
    """A JSON Schema 2020-12 validator with ECMA-262 regexes (Python's `jsonschema` lets `$`
    match before a trailing newline) that asserts formats."""
    return jsonschema_rs.Draft202012Validator(schema_of(document, model), validate_formats=True)


def accepts(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
    except ValidationError:
        return False
    return True


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, items in document["paths"].items():
        for method, operation in items.items():
            yield f"{method.upper()} {path}", operation


def walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)


def test_every_pattern_compiles_in_python_and_in_rust_regex(document: dict[str, Any]) -> None:
    """Validators and fuzzers ignore a pattern their engine cannot compile (Rust's refuses lone
    surrogates, for one): each pattern must work in both engines."""
    patterns = {node["pattern"] for node in walk(document) if isinstance(node.get("pattern"), str)}
    assert len(patterns) >= 4, patterns
    for pattern in patterns:
        re.compile(pattern)
        jsonschema_rs.validator_for({"type": "string", "pattern": pattern})


def test_limits_are_the_enforced_ones(document: dict[str, Any]) -> None:
    create = schema_of(document, CreateTokenRequest)["properties"]
    assert (create["name"]["minLength"], create["name"]["maxLength"]) == (1, NAME_MAX_LENGTH)
    assert (create["scopes"]["minItems"], create["scopes"]["maxItems"]) == (1, MAX_SCOPES_PER_TOKEN)
    ids = schema_of(document, BulkRevokeRequest)["properties"]["token_ids"]["anyOf"][0]
    assert (ids["minItems"], ids["maxItems"], ids["items"]["maxLength"]) == (1, MAX_IDS_PER_BULK_REVOKE, 16)
    for model, field, limit in (
        (CreateTokenRequest, "name", NAME_MAX_LENGTH),
        (CreateTokenRequest, "scopes", MAX_SCOPES_PER_TOKEN),
        (BulkRevokeRequest, "token_ids", MAX_IDS_PER_BULK_REVOKE),
    ):
        value: Any = "x" if field == "name" else ["reports:read"] if field == "scopes" else ["0" * 16]
        over = "x" * (limit + 1) if field == "name" else value * (limit + 1)
        within = "x" * limit if field == "name" else value * limit
        base: dict[str, Any] = {"name": "n", "scopes": ["reports:read"]} if model is CreateTokenRequest else {}
        assert accepts(model, {**base, field: within}) and validator(document, model).is_valid({**base, field: within})
        assert not accepts(model, {**base, field: over})
        assert not validator(document, model).is_valid({**base, field: over})


def test_catalog_names_are_enums(document: dict[str, Any]) -> None:
    catalog = default_catalog()
    scopes = schema_of(document, CreateTokenRequest)["properties"]["scopes"]["items"]
    assert scopes["enum"] == list(catalog.descriptions)
    role = document["components"]["schemas"]["MembershipUpdate"]["properties"]["role"]["anyOf"][0]
    assert role["enum"] == list(catalog.roles)
    grace = document["components"]["schemas"]["RotateTokenRequest"]["properties"]["grace"]
    assert grace["enum"] == list(GRACE_PERIODS)
    assert not [node for node in walk(document) if "x-catalog" in node]


NAME_CHARACTERS = st.one_of(
    st.characters(codec="utf-8"),  # everything but surrogates, control and format characters included
    st.sampled_from("\t\n\r\x00\x1b\x85\u00a0\u200b\u200d\u2028\u202e\u2060\u3000\u3164\u115f\u2800\ufeff\U000e0041 a"),
)


@given(st.text(NAME_CHARACTERS, max_size=12))
@settings(max_examples=400)
def test_the_name_pattern_is_exactly_what_the_name_rules_accept(name: str) -> None:
    pattern = re.compile(models.name_pattern())
    assert (pattern.fullmatch(name) is not None) == accepts(CreateTokenRequest, {"name": name, "scopes": ["x"]})


@pytest.mark.parametrize(
    "value",
    [
        "2030-01-31",
        "2030-01-31T12:00:00Z",
        "2030-01-31t12:00:00z",
        "2030-01-31T12:00:00.123+05:30",
        "2030-01-31T12:00:00",  # no offset
        "2030-01-31 12:00:00Z",  # not RFC 3339
        "2030-02-30",
        "2030-1-31",
        " 2030-01-31",
        "2030-W05-1",
        "20300131",
        "2030-01-31T12:00:00+05:60",
        "2030-01-31T24:00:00Z",
        "\u0662\u0660\u0663\u0660-01-31",  # Arabic-Indic digits
    ],
)
def test_an_expiry_is_accepted_exactly_when_the_document_says_it_is_a_date_or_date_time(
    document: dict[str, Any], value: str
) -> None:
    body = {"name": "n", "scopes": ["reports:read"], "expires_at": value}
    assert accepts(CreateTokenRequest, body) == validator(document, CreateTokenRequest).is_valid(body), value


SELECTOR_VALUES: dict[str, list[Any]] = {
    "token_ids": [None, ["0" * 16]],
    "owner_id": [None, "user-1"],
    "organisation": [None, False, True],
}
ABSENT = object()


@pytest.mark.parametrize(
    "combination",
    list(itertools.product(*([ABSENT, *values] for values in SELECTOR_VALUES.values()))),
)
def test_bulk_revoke_selectors_one_of_is_the_validators_rule(document: dict[str, Any], combination: tuple) -> None:
    body = {name: value for name, value in zip(SELECTOR_VALUES, combination, strict=True) if value is not ABSENT}
    assert accepts(BulkRevokeRequest, body) == validator(document, BulkRevokeRequest).is_valid(body), body


@pytest.mark.parametrize(
    ("value", "valid"),
    [(366, True), (366.0, True), (366.5, False), ("366", False), (True, False), (None, False), (10**30, False)],
)
def test_policy_integers_are_json_schema_integers(document: dict[str, Any], value: Any, valid: bool) -> None:
    body = {"max_lifetime_days": value, "default_lifetime_days": 1, "max_active_tokens_per_user": 1}
    assert accepts(PolicyUpdate, body) is valid
    assert validator(document, PolicyUpdate).is_valid(body) is valid


@pytest.mark.parametrize("owner_id", ["user-1", "a@b.c", "", "x" * 129, "ORG#x", "a b", "a\n"])
def test_user_ids_follow_the_documented_pattern(document: dict[str, Any], owner_id: str) -> None:
    body = {"owner_id": owner_id}
    assert accepts(BulkRevokeRequest, body) == validator(document, BulkRevokeRequest).is_valid(body), owner_id


def test_every_operation_lists_its_errors_and_security(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        responses = operation["responses"]
        has_input = "parameters" in operation or "requestBody" in operation
        assert ("400" in responses) == (has_input or label.split(" ")[1].startswith("/v1/")), label
        assert ("413" in responses) == ("requestBody" in operation) == ("415" in responses), label
        assert {"401", "429"} <= set(responses), label
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (label, status)
        if label == "POST /v1/secret-scanning":  # no authorizer (Auth: NONE): the report's signature instead
            assert operation["security"] == [{"partnerSignature": []}] and "headers" not in responses["401"], label
            continue
        token_api = label.split(" ")[1].startswith("/v1/")
        assert operation["security"] == [{"apiToken": []}] if token_api else [{"consoleUser": []}], label
        if token_api:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"], label
        if "503" in responses:
            assert responses["503"]["headers"]["Retry-After"]["required"], label
    console = document["components"]["securitySchemes"]["consoleUser"]
    assert (console["type"], console["in"], console["name"]) == ("apiKey", "header", "Authorization")


def test_ids_in_answers_link_to_the_operations_that_take_them(document: dict[str, Any]) -> None:
    created = document["paths"]["/tokens"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"]: link["parameters"] for link in created.values()}
    by_id = {"path.token_id": "$response.body#/token_id"}
    for path, method in (("/tokens/{token_id}", "get"), ("/tokens/{token_id}", "delete")):
        assert targets[document["paths"][path][method]["operationId"]] == by_id
    listed = document["paths"]["/tokens"]["get"]["responses"]["200"]["links"]
    assert {"path.token_id": "$response.body#/items/0/token_id"} in [link["parameters"] for link in listed.values()]
