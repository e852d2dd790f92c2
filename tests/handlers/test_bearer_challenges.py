"""RFC 6750 end to end through the local gateway (web ACL, routing, the real authorizer with its
cache, gateway responses, the real handlers): each way of presenting, or not presenting, a token
gets its status, challenge and body, and the authorizer runs only for requests that carry
Bearer credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support import mint, with_other_secret

from devserver.gateway import EXAMPLE_API, Identity, LocalGateway, example_routes, load_handler_module
from devserver.template import ROOT
from token_service.domain.token_format import generate_token

REALM = 'realm="api-tokens"'
NO_CREDENTIALS = (401, f"Bearer {REALM}", "not_authenticated")
INVALID_TOKEN = (401, f'Bearer {REALM}, error="invalid_token"', "invalid_token")
INSUFFICIENT_SCOPE = (403, f'Bearer {REALM}, error="insufficient_scope"', "insufficient_scope")
INVALID_REQUEST = (400, f'Bearer {REALM}, error="invalid_request"', "invalid_request")


@pytest.fixture
def gateway(dynamodb: object) -> LocalGateway:
    """The token API, and the example API standing in for yours (the route map's other routes)."""
    return LocalGateway(lambda _: Identity("alice", "org-acme", "admin"), extra_routes=example_routes(None))


@pytest.fixture
def authorizer_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    authorizer = load_handler_module(ROOT / "functions" / "authorizer", "app.lambda_handler")
    calls: list[dict[str, Any]] = []
    original = authorizer.lambda_handler

    def counting(event: dict[str, Any], context: Any) -> Any:
        calls.append(event)
        return original(event, context)

    monkeypatch.setattr(authorizer, "lambda_handler", counting)
    return calls


def assert_answer(response: Any, expected: tuple[int, str, str]) -> None:
    status, challenge, code = expected
    assert response.status == status, response.body
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    error = json.loads(response.body)["error"]
    assert error["code"] == code and set(error) == {"code", "message"}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no Authorization header"),
        pytest.param({"Authorization": "Bearer"}, id="empty Bearer"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="wrong scheme"),
    ],
)
def test_no_credentials_get_a_challenge_without_an_error_code_and_no_authorizer_call(
    gateway: LocalGateway, authorizer_calls: list[dict[str, Any]], headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/v1/token"), ("DELETE", "/v1/token"), ("POST", "/v1/import/builds")):
        assert_answer(gateway.handle(method, path, headers, {}, None), NO_CREDENTIALS)
    assert authorizer_calls == []


def test_a_token_in_the_query_string_only_is_never_accepted(
    gateway: LocalGateway, authorizer_calls: list[dict[str, Any]]
) -> None:
    token = mint(["reports:read"])
    for name in ("access_token", "ACCESS_TOKEN"):
        response = gateway.handle("GET", "/v1/token", {}, {name: [token]}, None)
        assert_answer(response, NO_CREDENTIALS)
        assert token not in response.body
    assert authorizer_calls == []
    # The same token in the header works: it was refused for where it was, not for what it is.
    assert gateway.handle("GET", "/v1/token", {"Authorization": f"Bearer {token}"}, {}, None).status == 200


def test_a_token_in_the_header_and_the_query_string_is_an_invalid_request(
    gateway: LocalGateway, authorizer_calls: list[dict[str, Any]]
) -> None:
    token = mint(["reports:read"])
    response = gateway.handle("GET", "/v1/token", {"Authorization": f"Bearer {token}"}, {"access_token": [token]}, None)
    assert_answer(response, INVALID_REQUEST)
    assert authorizer_calls == []


def test_malformed_unknown_wrong_and_revoked_tokens_get_the_same_invalid_token_answer(
    gateway: LocalGateway, authorizer_calls: list[dict[str, Any]], fake_apigateway: object
) -> None:
    live = mint(["reports:read"])
    revoked = mint(["reports:read"])
    assert gateway.handle("DELETE", f"/tokens/{revoked[4:20]}", {}, {}, None).status == 200
    presented = {
        "malformed": "lgk_nope",
        "bad checksum": live[:-1] + ("A" if live[-1] != "A" else "B"),
        "unknown": generate_token("lgk").token,
        "wrong secret": with_other_secret(live),
        "revoked": revoked,
    }
    answers = {}
    for case, token in presented.items():
        response = gateway.handle("GET", "/v1/token", {"Authorization": f"Bearer {token}"}, {}, None)
        assert_answer(response, INVALID_TOKEN)
        answers[case] = (response.status, response.headers, response.body)
    assert len({json.dumps(answer, sort_keys=True) for answer in answers.values()}) == 1, answers
    assert len(authorizer_calls) == len(presented)  # each reached the authorizer, which refused it


def test_a_valid_token_without_the_routes_scope_gets_insufficient_scope(
    gateway: LocalGateway, authorizer_calls: list[dict[str, Any]]
) -> None:
    headers = {"Authorization": f"Bearer {mint(['reports:read'])}"}
    assert_answer(gateway.handle("POST", "/v1/import/builds", headers, {}, None), INSUFFICIENT_SCOPE)
    allowed = gateway.handle("GET", "/v1/reports", headers, {}, None)  # the scope it holds
    assert allowed.status == 200 and "authorizer" in allowed.json()
    assert [call["resource"] for call in authorizer_calls] == ["/v1/import/builds", "/v1/reports"]
    assert all(call["requestContext"]["apiId"] == EXAMPLE_API.lower() for call in authorizer_calls)


def test_an_unknown_route_of_the_token_api_is_challenged_before_it_is_routed(gateway: LocalGateway) -> None:
    """AWS WAF inspects the request before API Gateway matches it to a resource."""
    assert_answer(gateway.handle("GET", "/v1/nothing-here", {}, {}, None), NO_CREDENTIALS)
    routed = gateway.handle("GET", "/v1/nothing-here", {"Authorization": "Bearer lgk_x"}, {}, None)
    assert routed.status == 403 and routed.json()["error"]["code"] == "MISSING_AUTHENTICATION_TOKEN"
