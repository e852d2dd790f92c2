"""The console API accepts ID tokens of its own app clients only: `token_use` must be "id" and
`aud` one of CONSOLE_CLIENT_IDS, checked by every console function before anything else.
Fast: no AWS, no moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from token_service.config import ConfigurationError, ManagementConfig
from token_service.domain.errors import NotAuthenticated
from token_service.http.identity import AUDIENCE_CLAIM, TOKEN_USE_CLAIM, check_console_token
from token_service.http.proxy import lambda_handler_for
from token_service.http.rest import JsonResponse, RestResolver

CONSOLE = "4example0client0id0abcdef"
OTHER_CONSOLE = "2nd0console0client0abcd"
CLAIMS = {
    "sub": "user-1",
    "custom:org_id": "org-acme",
    "custom:role": "member",
    AUDIENCE_CLAIM: CONSOLE,
    TOKEN_USE_CLAIM: "id",
}


def test_the_claim_names_are_cognitos() -> None:
    assert (AUDIENCE_CLAIM, TOKEN_USE_CLAIM) == ("aud", "token_use")


@pytest.mark.parametrize("clients", [(CONSOLE,), (OTHER_CONSOLE, CONSOLE), frozenset({CONSOLE}), [CONSOLE]])
def test_an_id_token_of_a_configured_app_client_is_accepted(clients: Any) -> None:
    assert check_console_token(CLAIMS, clients) is None


@pytest.mark.parametrize("claims", [None, {}])
def test_no_claims_is_no_identity(claims: dict[str, Any] | None) -> None:
    with pytest.raises(NotAuthenticated) as raised:
        check_console_token(claims, (CONSOLE,))
    assert str(raised.value) == "The request carries no identity."


@pytest.mark.parametrize(
    "token_use",
    [
        pytest.param("access", id="access-token"),
        pytest.param("ID", id="upper-case"),
        pytest.param("id ", id="trailing-space"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
        pytest.param(["id"], id="list"),
    ],
)
def test_only_an_id_token_is_accepted(token_use: Any) -> None:
    claims = {key: value for key, value in CLAIMS.items() if key != TOKEN_USE_CLAIM}
    if token_use is not None:
        claims[TOKEN_USE_CLAIM] = token_use
    with pytest.raises(NotAuthenticated) as raised:
        check_console_token(claims, (CONSOLE,))
    assert str(raised.value) == "The identity must come from an ID token."


@pytest.mark.parametrize(
    "audience",
    [
        pytest.param("another0app0client0id0xyz", id="another-app-client"),
        pytest.param(CONSOLE.upper(), id="other-case"),
        pytest.param(CONSOLE[:-1], id="prefix"),
        pytest.param(CONSOLE + "x", id="longer"),
        pytest.param(f"{CONSOLE},{OTHER_CONSOLE}", id="the-list-itself"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
        pytest.param([CONSOLE], id="list"),
        pytest.param(42, id="number"),
    ],
)
def test_an_id_token_of_another_app_client_is_refused(audience: Any) -> None:
    claims = {key: value for key, value in CLAIMS.items() if key != AUDIENCE_CLAIM}
    if audience is not None:
        claims[AUDIENCE_CLAIM] = audience
    with pytest.raises(NotAuthenticated) as raised:
        check_console_token(claims, (CONSOLE, OTHER_CONSOLE))
    assert str(raised.value) == "The ID token was not issued to this console's app client."


def test_an_access_token_claim_of_the_client_does_not_stand_for_the_audience() -> None:
    """Cognito's access tokens name the app client in client_id, and carry no aud."""
    claims = {**CLAIMS, TOKEN_USE_CLAIM: "access", "client_id": CONSOLE}
    del claims[AUDIENCE_CLAIM]
    with pytest.raises(NotAuthenticated):
        check_console_token(claims, (CONSOLE,))


def test_no_configured_client_accepts_nothing() -> None:
    with pytest.raises(NotAuthenticated):
        check_console_token(CLAIMS, ())


def test_one_id_as_a_string_is_a_mistake_not_a_set_of_characters() -> None:
    with pytest.raises(TypeError):
        check_console_token({**CLAIMS, AUDIENCE_CLAIM: "4"}, CONSOLE)


# -- CONSOLE_CLIENT_IDS -----------------------------------------------------------------------------

BASE = {"TABLE_NAME": "tokens"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (CONSOLE, (CONSOLE,)),
        (f" {CONSOLE} , {OTHER_CONSOLE},,{CONSOLE}", (CONSOLE, OTHER_CONSOLE)),
        ("a+b_c", ("a+b_c",)),
        ("x" * 128, ("x" * 128,)),
    ],
    ids=["one", "spaces-and-repeats", "plus-and-underscore", "longest"],  # ids mutmut can pass on
)
def test_the_console_client_ids_are_read(value: str, expected: tuple[str, ...]) -> None:
    config = ManagementConfig.from_environ({**BASE, "CONSOLE_CLIENT_IDS": value})
    assert config.console_client_ids == expected
    assert config.console_clients() == expected


@pytest.mark.parametrize(
    "value",
    ["client id", "client/id", "x" * 129, "ünicode", "a;b", f"{CONSOLE},bad id"],
    ids=["space", "slash", "too-long", "non-ascii", "semicolon", "second-one-bad"],  # ids mutmut can pass on
)
def test_a_malformed_client_id_is_named(value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ManagementConfig.from_environ({**BASE, "CONSOLE_CLIENT_IDS": value})
    assert raised.value.variable == "CONSOLE_CLIENT_IDS"


@pytest.mark.parametrize("env", [BASE, {**BASE, "CONSOLE_CLIENT_IDS": " , "}], ids=["unset", "blank"])
def test_a_console_function_without_client_ids_fails_at_start_up(env: dict[str, str]) -> None:
    """Other management functions (self-service, membership) need none; a console function
    asks for them when it builds its handler, so the deploy fails loudly at init."""
    config = ManagementConfig.from_environ(env)
    assert config.console_client_ids == ()
    with pytest.raises(ConfigurationError) as raised:
        config.console_clients()
    assert raised.value.variable == "CONSOLE_CLIENT_IDS"


# -- every console function checks before anything else ---------------------------------------------


class Thing(BaseModel):
    name: str


class Context:
    function_name = "ConsoleFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ConsoleFunction"
    aws_request_id = "request-1"


def handler(console_clients: Any) -> tuple[Any, list[str]]:
    app = RestResolver()
    reached: list[str] = []

    @app.route("POST", "/things", summary="Make a thing", body=Thing, response=Thing, status=201)
    def make(body: Thing) -> JsonResponse:
        reached.append("handler")
        return JsonResponse(201, {"name": body.name})

    return lambda_handler_for(app, sdk_tracing=False, console_clients=console_clients), reached


def event(claims: dict[str, Any] | None, body: str | None = '{"name": "thing"}') -> dict[str, Any]:
    return {
        "resource": "/things",
        "path": "/things",
        "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"requestId": "r1", "authorizer": {} if claims is None else {"claims": claims}},
        "body": body,
        "isBase64Encoded": False,
    }


def answer(result: dict[str, Any]) -> tuple[int, str]:
    return result["statusCode"], json.loads(result["body"]).get("error", {}).get("code", "")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(None, id="no-claims"),
        pytest.param({**CLAIMS, AUDIENCE_CLAIM: "another0app0client0id0xyz"}, id="other-app-client"),
        pytest.param({**CLAIMS, TOKEN_USE_CLAIM: "access"}, id="access-token"),
    ],
)
def test_a_console_function_refuses_other_tokens_before_reading_the_request(claims: dict[str, Any] | None) -> None:
    handle, reached = handler((CONSOLE,))
    assert answer(handle(event(claims), Context())) == (401, "not_authenticated")  # type: ignore[arg-type]
    # Even a malformed body is not looked at: no 400 telling anything about the request.
    assert answer(handle(event(claims, body="{not json"), Context())) == (401, "not_authenticated")  # type: ignore[arg-type]
    assert reached == []


def test_a_console_function_serves_its_own_clients_tokens() -> None:
    handle, reached = handler((OTHER_CONSOLE, CONSOLE))
    assert handle(event(CLAIMS), Context())["statusCode"] == 201  # type: ignore[arg-type]
    assert reached == ["handler"]


def test_a_function_without_console_routes_does_not_check() -> None:
    handle, reached = handler(None)
    assert handle(event(None), Context())["statusCode"] == 201  # type: ignore[arg-type]
    assert reached == ["handler"]
