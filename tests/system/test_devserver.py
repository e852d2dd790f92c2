"""The local server over real HTTP: the quick start, end to end."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from devserver.template import ROOT
from token_service.domain.token_format import token_regex

pytestmark = pytest.mark.dynamodb_backends  # the server on moto, and on dynalite
MEMBER = {"X-Dev-User-Id": "bob", "X-Dev-Org-Id": "org-acme", "X-Dev-Role": "member"}


def test_create_use_list_revoke_then_401(server):
    created = server.request("POST", "/tokens", {"name": "quick start", "scopes": ["reports:read"]}, MEMBER)
    assert created.status == 201, created.body
    assert created.headers["Cache-Control"] == "no-store"
    token = created.json()["token"]
    assert re.fullmatch(token_regex("lgk"), token)
    bearer = {"Authorization": f"Bearer {token}"}

    for _ in range(2):  # the second call is answered from the authorizer cache
        me = server.request("GET", "/v1/token", headers=bearer)
        assert me.status == 200, me.body
        assert me.json()["token_id"] == created.json()["token_id"]
        assert me.json()["org_id"] == "org-acme"

    listed = server.request("GET", "/tokens", headers=MEMBER).json()["items"]
    assert [item["name"] for item in listed] == ["quick start"]
    assert listed[0]["last_used_at"] is not None

    revoked = server.request("DELETE", f"/tokens/{created.json()['token_id']}", headers=MEMBER)
    assert revoked.status == 200 and revoked.json()["status"] == "revoked"

    # Revocation flushed the authorizer cache: rejected at once, not after the cache time.
    after = server.request("GET", "/v1/token", headers=bearer)
    assert after.status == 401
    assert after.headers["WWW-Authenticate"] == 'Bearer realm="api-tokens", error="invalid_token"'
    assert after.json()["error"]["code"] == "invalid_token"


def test_a_token_revokes_itself_over_http(server):
    token = server.request("POST", "/tokens", {"name": "leaked", "scopes": ["reports:read"]}, MEMBER).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert server.request("DELETE", "/v1/token", headers=bearer).json()["status"] == "revoked"
    assert server.request("GET", "/v1/token", headers=bearer).status == 401


def test_missing_or_malformed_credentials_get_401_from_the_gateway(server):
    for headers, challenge in (
        ({}, 'Bearer realm="api-tokens"'),  # no credentials: no error code (RFC 6750 section 3.1)
        ({"Authorization": "Basic abc"}, 'Bearer realm="api-tokens"'),
        ({"Authorization": "Bearer lgk_nope"}, 'Bearer realm="api-tokens", error="invalid_token"'),
    ):
        reply = server.request("GET", "/v1/token", headers=headers)
        assert reply.status == 401, headers
        assert reply.headers["WWW-Authenticate"] == challenge


def test_identity_can_be_switched(server):
    viewer = {**MEMBER, "X-Dev-User-Id": "vera", "X-Dev-Role": "viewer"}
    scopes = server.request("GET", "/scopes", headers=viewer).json()
    assert scopes["role"] == "viewer"
    assert [scope["name"] for scope in scopes["scopes"]] == ["export:read", "reports:read", "datastudio:read"]
    denied = server.request("POST", "/tokens", {"name": "x", "scopes": ["import:builds"]}, viewer)
    assert denied.status == 403 and denied.json()["error"]["fields"][0]["field"] == "scopes"


def test_openapi_document_and_reference_page(server):
    document = server.request("GET", "/openapi.json").json()
    assert {"/tokens", "/tokens/{token_id}", "/tokens/revoke", "/scopes", "/settings", "/v1/token"} <= set(
        document["paths"]
    )
    assert document["paths"]["/tokens"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CreateTokenRequest"
    }
    assert "400" in document["paths"]["/tokens"]["post"]["responses"]
    page = server.request("GET", "/docs")
    assert page.status == 200 and "/openapi.json" in page.body


def test_console_is_served(server):
    page = server.request("GET", "/")
    assert page.status == 200
    assert "Generate New API Token" in page.body
    assert server.request("GET", "/console/app.js").status == 200
    assert server.request("GET", "/console/../server.py").status == 404


def test_cleanup_runs_on_demand(server):
    reply = server.request("POST", "/_dev/cleanup")
    assert reply.status == 200
    assert reply.json()["complete"] is True


def test_a_port_in_use_gives_a_clear_message(server):
    second = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "devserver", "--port", str(server.port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 2
    assert f"Port {server.port}" in second.stderr and "already in use" in second.stderr


def test_the_readme_quick_start_works_as_written(server):
    readme = (ROOT / "README.md").read_text()
    script = readme.split("<!-- quickstart -->\n```sh\n", 1)[1].split("```", 1)[0]
    script = script.replace("127.0.0.1:3000", f"127.0.0.1:{server.port}")
    result = subprocess.run(  # noqa: S603
        ["bash", "-euo", "pipefail", "-c", script],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert '"name":"quick start"' in result.stdout
    assert '"status":"revoked"' in result.stdout.replace(" ", "")
    assert "HTTP/1.1 401" in result.stdout
    assert 'error="invalid_token"' in result.stdout
