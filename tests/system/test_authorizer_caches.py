"""A wildcard policy and a token's expiry, through the authorizer cache, on the local stack (the
dev server keys its cache by the template's identity sources, honours the cache time, and
matches policies with API Gateway's rules). A short cache time here: test_revocation_race.py
has the template's."""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

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


def mint(server: RunningServer, scopes: list[str], expires_at: str | None = None) -> dict[str, str]:
    body: dict[str, object] = {"name": "cache test", "scopes": scopes}
    if expires_at:
        body["expires_at"] = expires_at
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
