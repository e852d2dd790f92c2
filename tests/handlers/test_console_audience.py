"""Every route of the console API accepts only ID tokens of the console's app clients
(CONSOLE_CLIENT_IDS): a token of another app client of the same user pool, or an access token,
is a 401 from the real handler before anything is read or written."""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest
from support import TABLE_NAME, Console, table

from devserver.gateway import SAMPLE_CLIENT_ID, Identity, invoke, proxy_event
from devserver.template import Route, api_routes

CONSOLE_ROUTES = [route for route in api_routes() if route.api == "ConsoleApi"]
ALICE = {
    "sub": "alice",
    "email": "alice@example.com",
    "custom:org_id": "org-acme",
    "custom:role": "admin",
    "cognito:username": "alice",
    "token_use": "id",
    "aud": SAMPLE_CLIENT_ID,
}


def test_the_console_api_has_routes_and_the_test_environment_accepts_the_sample_client() -> None:
    assert len(CONSOLE_ROUTES) >= 10
    assert os.environ["CONSOLE_CLIENT_IDS"] == SAMPLE_CLIENT_ID


def call(route: Route, claims: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = re.sub(r"\{token_id\}", "0" * 16, route.resource)
    path = re.sub(r"\{[^}]+\}", "someone", path)
    body = json.dumps({"name": "x", "scopes": ["reports:read"]}) if route.method in {"POST", "PUT", "PATCH"} else None
    headers = {"Content-Type": "application/json"} if body else {}
    event = proxy_event(route, path, {}, headers=headers, body=body, authorizer={"claims": claims})
    answer = invoke(route, event)
    return answer.status, answer.json()


@pytest.mark.parametrize("route", CONSOLE_ROUTES, ids=lambda route: f"{route.method} {route.resource}")
@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({**ALICE, "aud": "another0app0client0of0pool"}, id="other-app-client"),
        pytest.param({key: value for key, value in ALICE.items() if key != "aud"}, id="no-aud"),
        pytest.param(
            {**{key: value for key, value in ALICE.items() if key != "aud"}, "token_use": "access", "client_id": "x"},
            id="access-token",
        ),
    ],
)
def test_every_console_route_refuses_other_tokens(dynamodb: Any, route: Route, claims: dict[str, Any]) -> None:
    before = table(dynamodb)
    status, body = call(route, claims)
    assert (status, body["error"]["code"]) == (401, "not_authenticated"), body
    assert table(dynamodb) == before


def test_the_same_claims_with_the_consoles_audience_are_served(dynamodb: Any) -> None:
    scopes = next(route for route in CONSOLE_ROUTES if (route.method, route.resource) == ("GET", "/scopes"))
    status, body = call(scopes, ALICE)
    assert status == 200 and body["role"] == "admin"


def test_identity_claims_carry_the_audience_they_are_made_for(dynamodb: Any) -> None:
    accepted = Console(Identity("alice", "org-acme", "admin"))
    assert accepted.request("GET", "/scopes").status == 200
    other = Console(Identity("alice", "org-acme", "admin", client_id="another0app0client0of0pool"))
    refused = other.request("GET", "/tokens")
    assert refused.status == 401 and refused.json()["error"]["code"] == "not_authenticated"
    assert dynamodb.scan(TableName=TABLE_NAME)["Count"] == 0
