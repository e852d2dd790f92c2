"""Where the dev server stands in for API Gateway, it answers as API Gateway does."""

from __future__ import annotations

import pytest
from support import RunningServer

MEMBER = {"X-Dev-User-Id": "fidelity", "X-Dev-Org-Id": "org-fidelity", "X-Dev-Role": "member"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/no-such-route"),
        ("GET", "/tokens/a/b"),  # deeper than any resource
        ("PATCH", "/tokens"),  # a method the resource does not have
        ("GET", "/v1/nothing-here"),
        ("POST", "/v1/token"),
    ],
)
def test_an_unknown_route_is_a_403_missing_authentication_token(server: RunningServer, method: str, path: str) -> None:
    # With Bearer credentials: without them, the token API's web ACL answers 401 before routing.
    response = server.request(method, path, headers={**MEMBER, "Authorization": "Bearer lgk_anything"})
    assert response.status == 403, response.body
    assert response.json() == {
        "error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    }
    assert response.headers.get("Cache-Control") == "no-store"


def test_a_repeated_query_parameter_reaches_the_handler_as_every_value(server: RunningServer) -> None:
    """API Gateway passes every value in multiValueQueryStringParameters (and the last in
    queryStringParameters); the handler refuses a parameter given twice rather than pick one."""
    response = server.request("GET", "/tokens?status=active&status=revoked", headers=MEMBER)
    assert response.status == 400, response.body
    assert response.json()["error"]["fields"] == [{"field": "status", "reason": "appears more than once"}]
    single = server.request("GET", "/tokens?status=active", headers=MEMBER)
    assert single.status == 200, single.body
