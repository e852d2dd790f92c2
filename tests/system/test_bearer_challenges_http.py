"""RFC 6750 over HTTP: the dev server sends each answer's status, challenge and body on the wire
as API Gateway (behind the token API's web ACL) does, and a token in the URL is never used."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
from support import RunningServer, bearer

from token_service.domain.token_format import generate_token

REALM = 'realm="api-tokens"'
NO_CREDENTIALS = (401, f"Bearer {REALM}", "not_authenticated")
INVALID_TOKEN = (401, f'Bearer {REALM}, error="invalid_token"', "invalid_token")
INSUFFICIENT_SCOPE = (403, f'Bearer {REALM}, error="insufficient_scope"', "insufficient_scope")
INVALID_REQUEST = (400, f'Bearer {REALM}, error="invalid_request"', "invalid_request")
TOKEN = "{token}"  # replaced by a live token with the reports:read scope
UNKNOWN = generate_token("lgk").token  # well formed, checksum included, but never issued


@pytest.mark.parametrize(
    ("method", "path", "authorization", "query", "expected"),
    [
        pytest.param("GET", "/v1/token", None, None, NO_CREDENTIALS, id="no Authorization header"),
        pytest.param("GET", "/v1/token", "Bearer", None, NO_CREDENTIALS, id="empty Bearer"),
        pytest.param("GET", "/v1/token", "Basic dXNlcjpwYXNz", None, NO_CREDENTIALS, id="wrong scheme"),
        pytest.param("GET", "/v1/token", "Bearer lgk_nope", None, INVALID_TOKEN, id="malformed token"),
        pytest.param("GET", "/v1/token", f"Bearer {UNKNOWN}", None, INVALID_TOKEN, id="unknown token"),
        pytest.param("GET", "/v1/token", None, f"access_token={TOKEN}", NO_CREDENTIALS, id="token in query only"),
        pytest.param(
            "GET", "/v1/token", f"Bearer {TOKEN}", f"access_token={TOKEN}", INVALID_REQUEST, id="token in both"
        ),
        pytest.param("POST", "/v1/import/builds", f"Bearer {TOKEN}", None, INSUFFICIENT_SCOPE, id="insufficient scope"),
    ],
)
def test_each_way_of_presenting_a_token_gets_its_rfc_6750_answer(
    server: RunningServer,
    self_token: str,
    method: str,
    path: str,
    authorization: str | None,
    query: str | None,
    expected: tuple[int, str, str],
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization.replace(TOKEN, self_token)}
    url = f"{server.url}{path}" + ("" if query is None else "?" + query.replace(TOKEN, self_token))
    response = requests.request(method, url, headers=headers, timeout=30)
    status, challenge, code = expected
    assert response.status_code == status, response.text
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code and set(error) == {"code", "message"}
    assert self_token not in response.text


def test_a_token_in_the_query_string_is_never_logged(server: RunningServer, self_token: str) -> None:
    """As on AWS, where the access log format names the resource path, never the query string."""
    marker = f"/v1/token?marker={uuid.uuid4().hex}"
    requests.get(f"{server.url}{marker}&access_token={self_token}", timeout=30)
    requests.get(f"{server.url}{marker}", timeout=30)  # its log line comes after the first one's
    deadline = time.monotonic() + 10
    while marker not in server.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert self_token not in server.output(), "the server's output shows a token sent in the query string"


def test_the_token_used_above_works_from_the_header(server: RunningServer, self_token: str) -> None:
    """The refusals above are for where and how the token was sent, not for the token."""
    response = requests.get(f"{server.url}/v1/token", headers=bearer(self_token), timeout=30)
    assert response.status_code == 200, response.text
    assert "WWW-Authenticate" not in response.headers
