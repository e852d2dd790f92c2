"""The caller comes from the Cognito claims only, and only when all three are valid identifiers;
the console API takes ID tokens of its own app clients only. Fast: no AWS, no moto."""

from __future__ import annotations

from typing import Any

import pytest

from token_service.domain.errors import NotAuthenticated
from token_service.domain.identity import Caller
from token_service.http.identity import (
    AUDIENCE_CLAIM,
    ORG_CLAIM,
    ROLE_CLAIM,
    TOKEN_USE_CLAIM,
    USER_CLAIM,
    caller_from_claims,
    check_console_token,
)

CLAIMS = {USER_CLAIM: "user-1", ORG_CLAIM: "org-acme", ROLE_CLAIM: "member"}


def test_the_caller_is_exactly_the_three_claims() -> None:
    assert (USER_CLAIM, ORG_CLAIM, ROLE_CLAIM) == ("sub", "custom:org_id", "custom:role")
    caller = caller_from_claims({**CLAIMS, "email": "a@example.com", "custom:other": "x"})
    assert caller == Caller(user_id="user-1", org_id="org-acme", role="member")
    caller = caller_from_claims({USER_CLAIM: "u@x.io", ORG_CLAIM: "org:7", ROLE_CLAIM: "admin"})
    assert (caller.user_id, caller.org_id, caller.role) == ("u@x.io", "org:7", "admin")


@pytest.mark.parametrize("claims", [None, {}])
def test_no_claims_is_no_identity(claims: dict[str, Any] | None) -> None:
    with pytest.raises(NotAuthenticated) as raised:
        caller_from_claims(claims)
    assert str(raised.value) == "The request carries no identity."


@pytest.mark.parametrize("claim", [USER_CLAIM, ORG_CLAIM, ROLE_CLAIM])
@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(42, id="number"),
        pytest.param(["org-acme"], id="list"),
        pytest.param("org#acme", id="key-separator"),
        pytest.param("org acme", id="space"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param("org\n", id="newline"),
    ],
)
def test_each_claim_must_be_a_valid_identifier(claim: str, value: object) -> None:
    claims = {key: item for key, item in CLAIMS.items() if key != claim}
    if value is not None:
        claims[claim] = value
    with pytest.raises(NotAuthenticated) as raised:
        caller_from_claims(claims)
    assert str(raised.value) == f"The identity lacks a valid '{claim}' claim."


def test_the_longest_valid_identifier_is_accepted() -> None:
    caller = caller_from_claims({**CLAIMS, USER_CLAIM: "x" * 128})
    assert caller.user_id == "x" * 128


# -- the console's own ID tokens only ----------------------------------------------------------

CONSOLE = "console-client-1"
ID_TOKEN = {**CLAIMS, AUDIENCE_CLAIM: CONSOLE, TOKEN_USE_CLAIM: "id"}


def test_an_id_token_of_a_console_client_passes() -> None:
    assert (AUDIENCE_CLAIM, TOKEN_USE_CLAIM) == ("aud", "token_use")
    for client_ids in ([CONSOLE], (CONSOLE, "other"), {CONSOLE}, frozenset({"other", CONSOLE})):
        assert check_console_token(ID_TOKEN, client_ids) is None


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        pytest.param(None, "The request carries no identity.", id="none"),
        pytest.param({}, "The request carries no identity.", id="empty"),
        pytest.param({**ID_TOKEN, TOKEN_USE_CLAIM: "access"}, "The identity must come from an ID token.", id="access"),
        pytest.param({**ID_TOKEN, TOKEN_USE_CLAIM: "ID"}, "The identity must come from an ID token.", id="ID"),
        pytest.param(CLAIMS, "The identity must come from an ID token.", id="no-token-use"),
        pytest.param(
            {**ID_TOKEN, AUDIENCE_CLAIM: "other-app"},
            "The ID token was not issued to this console's app client.",
            id="other-app",
        ),
        pytest.param(
            {**ID_TOKEN, AUDIENCE_CLAIM: [CONSOLE]},
            "The ID token was not issued to this console's app client.",
            id="audience-list",
        ),
        pytest.param(
            {key: value for key, value in ID_TOKEN.items() if key != AUDIENCE_CLAIM},
            "The ID token was not issued to this console's app client.",
            id="no-audience",
        ),
        pytest.param(
            {**ID_TOKEN, AUDIENCE_CLAIM: CONSOLE[:-1]},
            "The ID token was not issued to this console's app client.",
            id="prefix-of-a-client",
        ),
    ],
)
def test_anything_else_is_not_the_consoles(claims: dict[str, Any] | None, message: str) -> None:
    with pytest.raises(NotAuthenticated) as raised:
        check_console_token(claims, [CONSOLE, "other"])
    assert str(raised.value) == message


def test_one_client_id_given_as_a_string_is_a_programming_error() -> None:
    # "console-client-1" as a collection would accept "c", "o", ... as audiences.
    with pytest.raises(TypeError, match=r"^client_ids must be a collection of app client ids$"):
        check_console_token({**ID_TOKEN, AUDIENCE_CLAIM: "c"}, CONSOLE)
