"""A wildcard policy, a token's expiry and its address allowlist, through the authorizer cache,
on the local stack (the dev server keys its cache by the template's identity sources, the
source address included, honours the cache time, and matches policies with API Gateway's
rules). A short cache time here: test_revocation_race.py has the template's."""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import RunningServer

from token_service.domain.routes import load_route_map

ADMIN = {"X-Dev-User-Id": "cache-admin", "X-Dev-Org-Id": "org-caches", "X-Dev-Role": "admin"}
CACHE_SECONDS = 3
ROUTE_MAP = Path(tempfile.gettempdir()) / f"api-tokens-reports-routes-{os.getpid()}.json"

pytestmark = pytest.mark.devserver(
    env={"ROUTE_SCOPES_PATH": str(ROUTE_MAP), "AUTHORIZER_CACHE_SECONDS": str(CACHE_SECONDS)}
)


def setup_module() -> None:
    """The token API's own routes, and reports routes where a parameter's '*' would over-grant."""
    routes = {f"{route.method} {route.resource}": sorted(route.required_scopes) for route in load_route_map()}
    routes["GET /v1/reports/{report_id}/export"] = ["export:read"]
    ROUTE_MAP.write_text(json.dumps({"routes": routes}))


def teardown_module() -> None:
    ROUTE_MAP.unlink(missing_ok=True)


def mint(
    server: RunningServer, scopes: list[str], expires_at: str | None = None, allowed_cidrs: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, object] = {"name": "cache test", "scopes": scopes}
    if expires_at:
        body["expires_at"] = expires_at
    if allowed_cidrs is not None:
        body["allowed_cidrs"] = allowed_cidrs
    created = server.request("POST", "/tokens", body, ADMIN)
    assert created.status == 201, created.body
    return created.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_scope_for_a_route_does_not_reach_a_deeper_route_first_or_cached(server: RunningServer) -> None:
    token = mint(server, ["reports:read"])["token"]
    for _ in range(2):  # the first answer, then the cached one
        allowed = server.request("GET", "/v1/reports/42", headers=bearer(token))
        assert allowed.status == 200, allowed.body
        assert allowed.json()["authorizer"]["scopes"] == "reports:read"
        export = server.request("GET", "/v1/reports/42/export", headers=bearer(token))
        assert export.status == 403 and export.json()["error"]["code"] == "insufficient_scope"
        # In no route map, and no resource of any API: API Gateway's own 403.
        assert server.request("GET", "/v1/reports/1/raw-export", headers=bearer(token)).status == 403
    assert server.request("GET", "/v1/reports/43", headers=bearer(token)).status == 200  # same route, other path
    # The decision lines say what the gateway did: deny for the export, allow for the report.
    decisions = [json.loads(line) for line in server.output().splitlines() if '"Authorization decision"' in line]
    routes = {
        (line["route"], line["decision"], line["reason"]) for line in decisions if line["token_id"] == token[4:20]
    }
    assert routes == {
        ("GET /v1/reports/{report_id}", "allow", "allowed"),
        ("GET /v1/reports/{report_id}/export", "deny", "insufficient_scope"),
    }


def test_no_request_is_allowed_after_the_tokens_expiry_whatever_the_cache(server: RunningServer) -> None:
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)  # 5-6 s from expiry
    token = mint(server, ["reports:read"], expires.isoformat())["token"]
    answers = []
    while time.time() < expires.timestamp() + 3:
        started = time.time()
        answers.append((started, server.request("GET", "/v1/token", headers=bearer(token)).status))
        time.sleep(0.2)
    assert answers[0][1] == 200
    late = [(round(at - expires.timestamp(), 2), status) for at, status in answers if at >= expires.timestamp()]
    assert late and all(status == 401 for _, status in late), late
    # It stops working up to the cache time early, never late.
    assert all(status == 200 for at, status in answers if at < expires.timestamp() - 2 * CACHE_SECONDS)


def request_from(server: RunningServer, source: str, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A GET sent from another loopback address (127.0.0.0/8 all reaches the server): the dev
    server's `sourceIp` is the client's socket address, as API Gateway's is the TCP peer's."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def decisions_of(server: RunningServer, token_id: str) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in server.output().splitlines() if '"Authorization decision"' in line]
    return [(line["decision"], line["reason"]) for line in lines if line["token_id"] == token_id]


def test_the_source_address_is_part_of_the_cache_key(server: RunningServer) -> None:
    """An allow cached for one address never answers for another, nor does a refusal: each
    address gets its own authorizer invocation, then its own cached answer. X-Forwarded-For
    changes nothing (API Gateway's sourceIp is the TCP peer's address, whatever the header says)."""
    created = mint(server, ["reports:read"], allowed_cidrs=["127.0.0.1"])
    token, token_id = created["token"], created["token_id"]
    assert created["allowed_cidrs"] == ["127.0.0.1/32"]
    inside, outside = "127.0.0.1", "127.0.0.2"
    spoofed = {**bearer(token), "X-Forwarded-For": inside, "X-Real-IP": inside}
    answers = [
        request_from(server, inside, "/v1/reports/42", bearer(token))[0],  # invoked: allowed, cached
        request_from(server, inside, "/v1/reports/42", bearer(token))[0],  # the cached allow
        request_from(server, outside, "/v1/reports/42", bearer(token))[0],  # invoked: refused, cached
        request_from(server, outside, "/v1/reports/42", spoofed)[0],  # the cached refusal
        request_from(server, inside, "/v1/reports/43", bearer(token))[0],  # same route: the cached allow
    ]
    assert answers == [200, 200, 403, 403, 200]
    _, body = request_from(server, outside, "/v1/reports/42", spoofed)
    assert json.loads(body)["error"]["code"] == "insufficient_scope"  # the ACCESS_DENIED gateway response
    assert decisions_of(server, token_id) == [("allow", "allowed"), ("deny", "ip_not_allowed")]


def test_a_refusal_cached_for_one_address_does_not_answer_for_the_allowed_one(server: RunningServer) -> None:
    created = mint(server, ["reports:read"], allowed_cidrs=["127.0.0.2/32"])
    token = created["token"]
    assert request_from(server, "127.0.0.1", "/v1/reports", bearer(token))[0] == 403
    assert request_from(server, "127.0.0.2", "/v1/reports", bearer(token))[0] == 200
    assert request_from(server, "127.0.0.1", "/v1/reports", {**bearer(token), "X-Forwarded-For": "127.0.0.2"})[0] == 403
    assert decisions_of(server, created["token_id"]) == [("deny", "ip_not_allowed"), ("allow", "allowed")]
