"""Hostile input on POST /v1/secret-scanning (the route tests/handlers/test_hostile_input.py's
suite does not list): a signed but malformed report is a 400 naming what is wrong, a huge one a
413, another media type a 415; never a 5xx, and nothing is written."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from support import Console, FakeClock, field_problems, table

from token_service.http.secret_scanning import MAX_REPORT_BYTES, MAX_REPORT_TOKENS

pytestmark = pytest.mark.dynamodb_backends
Match = Callable[..., dict[str, Any]]


def assert_refused(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status == status, response.body[:300]
    assert response.headers["Content-Type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"]
    if field is not None:
        assert field in field_problems(response), error
    return error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param("not json", "body", id="not JSON"),
        pytest.param('{"token": "x", "type": "t"}', "body", id="an object, not an array"),
        pytest.param('"a string"', "body", id="a string"),
        pytest.param("null", "body", id="null"),
        pytest.param("[1, 2]", "0", id="items not objects"),
        pytest.param('[{"type": "lgk_api_token", "url": "", "source": "content"}]', "0.token", id="item without token"),
        pytest.param('[{"token": "lgk_x", "url": "", "source": "content"}]', "0.type", id="item without type"),
        pytest.param('[{"token": 12, "type": "t"}]', "0.token", id="token not a string"),
        pytest.param('[{"token": "", "type": "t"}]', "0.token", id="empty token"),
        pytest.param('[{"token": "x", "type": "t", "url": ["a"]}]', "0.url", id="url not a string"),
        pytest.param('[{"token": "' + "x" * 2000 + '", "type": "t"}]', "0.token", id="token too long"),
        pytest.param("[" * 100_000 + "]" * 100_000, "body", id="nested too deeply"),
        pytest.param("   ", "body", id="blank"),
    ],
)
def test_a_signed_malformed_report_is_400_naming_what_is_wrong(
    scanning: Any, member: Console, clock: FakeClock, dynamodb: Any, body: str, field: str
) -> None:
    member.create_ok("untouched")
    before = table(dynamodb)
    assert_refused(scanning.post(body), 400, field)
    assert table(dynamodb) == before


def test_too_many_matches_is_400(scanning: Any, clock: FakeClock, match: Match) -> None:
    report = [match(f"lgk_{index:054d}", url=None, source=None) for index in range(MAX_REPORT_TOKENS + 1)]
    assert_refused(scanning.report(report), 400, "body")


def test_a_huge_body_is_413_before_its_signature_is_checked(scanning: Any, clock: FakeClock, key_server: Any) -> None:
    body = json.dumps([{"token": "x", "type": "t", "url": "u" * MAX_REPORT_BYTES}])
    assert_refused(scanning.post(body), 413, "body")
    assert key_server.fetches == 0


def test_another_media_type_is_415_once_signed(scanning: Any, clock: FakeClock, match: Match) -> None:
    body = json.dumps([match("lgk_x")]).encode()
    headers = {**scanning.signer.headers(body), "Content-Type": "text/plain"}
    assert_refused(scanning.post(body, headers), 415, "body")


def test_a_base64_encoded_body_is_verified_as_its_bytes(scanning: Any, clock: FakeClock, match: Match) -> None:
    body = json.dumps([match("lgk_x")]).encode()
    response = scanning.post(body, event={"body": base64.b64encode(body).decode(), "isBase64Encoded": True})
    assert response.status == 200, response.body
    broken = scanning.post(body, event={"body": "%%%not base64", "isBase64Encoded": True})
    assert_refused(broken, 400, "body")


def test_a_signed_body_that_is_not_utf8_is_400(scanning: Any, clock: FakeClock) -> None:
    body = b'[{"token": "\xff\xfe", "type": "t"}]'
    response = scanning.post(
        body, scanning.signer.headers(body), {"body": base64.b64encode(body).decode(), "isBase64Encoded": True}
    )
    assert_refused(response, 400, "body")


def test_unknown_fields_are_ignored_and_odd_strings_are_answered_by_their_hash(
    scanning: Any, clock: FakeClock, match: Match
) -> None:
    odd = ["\u202e\u0000lgk_", "🔑" * 100, "lgk_" + "é" * 54]
    report = [match(text, extra={"nested": [1]}, url=None) for text in odd]
    response = scanning.post(json.dumps(report))
    assert response.status == 200, response.body
    assert [verdict["label"] for verdict in response.json()] == ["false_positive"] * len(odd)
    assert len({verdict["token_hash"] for verdict in response.json()}) == len(odd)
    # A lone surrogate (JSON "\\ud800") is no text at all: refused, by name.
    assert_refused(scanning.post(json.dumps([match("ok"), match("\ud800")])), 400, "1.token")


def test_an_empty_report_is_an_empty_answer(scanning: Any, clock: FakeClock) -> None:
    response = scanning.post("[]")
    assert (response.status, response.json()) == (200, [])
