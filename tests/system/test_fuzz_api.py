"""Schemathesis against the real local server (`python -m devserver`) and its `/openapi.json`.

What runs, over HTTP, on one server for the whole module:

- every operation of the document, positive and negative data (examples, coverage and
  fuzzing phases, bounded), with the checks `not_a_server_error`, the response
  conformance checks, `negative_data_rejection` and `ignored_auth`, plus this module's own:
  never a 5xx, every error a JSON `{"error": {...}}` without internals, every success
  `no-store`, no secret outside the create answer, and a console call that succeeded
  fails with 401 once the identity is invalid;
- the stateful phase over OpenAPI links this module adds to the loaded document (the served
  document has none): create -> get -> revoke -> get, create -> use GET /v1/token -> revoke
  -> use; an invariant after every step: no revoked token authorizes anything any more;
- arbitrary `Authorization` headers on /v1/token: always 401, never anything else;
- every status the service answers is in the document.

The stateful phase is schemathesis' own state machine (`schema.as_state_machine()`), driven
by links added to the loaded document by post-processing (`add_links`); the final "use
after revoke" is an invariant of the machine rather than a link, because no response of
a revoke carries the secret a link would need.

How identity works here. The console's identity comes from Cognito claims on AWS and from
the X-Dev-User-Id/X-Dev-Org-Id/X-Dev-Role headers on the local server, which falls back to
DEV_USER_ID/DEV_ORG_ID/DEV_ROLE, then to an admin, when a header is absent. The server is
started with those variables empty, so a request without identity is what it is on AWS
(no claims: 401), and the loaded document describes the local stand-in: the console's
`consoleUser` bearer scheme becomes the three X-Dev-* headers (apiKey schemes, all
required), so `ignored_auth` can remove or spoil them and expect a 401/403.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant
from support import RunningServer, bearer, console_identity, mint_over_http

from devserver.openapi import openapi_document
from token_service.domain.scopes import default_catalog
from token_service.domain.token_format import checksum, token_regex

TOKEN_IN_TEXT = re.compile(token_regex("lgk").replace(r"\b", ""))
STATEFUL_ORG = "org-stateful"
EXAMPLES_PER_OPERATION = 100
STATEFUL_SCENARIOS = 25
STATEFUL_STEPS = 10
PLACEHOLDER_URL = "http://127.0.0.1:9"  # replaced by the running server's URL on every call
INTERNALS = ("Traceback", "botocore", "ClientError", "api-tokens-local", "arn:aws", 'File "')

# The identity scheme as the local server implements it (see the module docstring).
DEV_IDENTITY_SCHEMES = {
    "devUser": {"type": "apiKey", "in": "header", "name": "X-Dev-User-Id"},
    "devOrg": {"type": "apiKey", "in": "header", "name": "X-Dev-Org-Id"},
    "devRole": {"type": "apiKey", "in": "header", "name": "X-Dev-Role"},
}

pytestmark = pytest.mark.devserver(identity_fallback=False)

CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "mode": "all",
            "max-examples": EXAMPLES_PER_OPERATION,
            "with-security-parameters": False,  # identity is set per request below
            "database": "none",
            "deterministic": True,
        },
        "phases": {
            "examples": {"enabled": True},
            # Undeclared methods: API Gateway answers any of them 403 (MISSING_AUTHENTICATION_TOKEN),
            # and so does the local server: not 405, so `unsupported_method` is off and
            # assert_well_formed checks for a JSON 4xx instead.
            # (TRACE and OPTIONS get http.server's own 501 HTML page locally; see the report.)
            "coverage": {"enabled": True, "unexpected-methods": ["GET", "PUT", "POST", "DELETE", "PATCH"]},
            "fuzzing": {"enabled": True},
            # Positive only: the stateful document is narrowed (see creatable_document), so its
            # "negative" data would often be valid requests.
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS, "generation": {"mode": "positive"}},
        },
        "checks": {
            # Revoke is a state change, not a deletion: the owner still reads the revoked
            # token's metadata (status "revoked"), so GET after DELETE is meant to be 200.
            # What must be gone after a revoke is the token's access: see the stateful test.
            "use_after_free": {"enabled": False},
            "unsupported_method": {"enabled": False},
            # The document cannot say which scopes exist, which characters a name may hold or
            # how far ahead an expiry may be: schema-valid requests are often 400s, rightly.
            "positive_data_acceptance": {"enabled": False},
            # 413 is the answer to an over-long body.
            "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "409", "413", "415"]},
        },
    }
)


# -- the server ---------------------------------------------------------------------------------


# -- the document, as the local server implements it -------------------------------------------


def operation_ids(document: dict[str, Any]) -> dict[str, str]:
    """'POST /tokens' -> operationId."""
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def add_links(document: dict[str, Any]) -> None:
    """OpenAPI links for the stateful phase: the served document has none."""
    ids = operation_ids(document)

    def link(source: str, status: str, name: str, target: str, parameters: dict[str, str]) -> None:
        method, path = source.split(" ", 1)
        response = document["paths"][path][method.lower()]["responses"][status]
        response.setdefault("links", {})[name] = {"operationId": ids[target], "parameters": parameters}

    by_id = {"path.token_id": "$response.body#/token_id"}
    use = {"header.Authorization": "Bearer {$response.body#/token}"}
    link("POST /tokens", "201", "GetCreatedToken", "GET /tokens/{token_id}", by_id)
    link("POST /tokens", "201", "RevokeCreatedToken", "DELETE /tokens/{token_id}", by_id)
    link("POST /tokens", "201", "UseCreatedToken", "GET /v1/token", use)
    link("POST /tokens", "201", "CreatedTokenRevokesItself", "DELETE /v1/token", use)
    link("GET /tokens/{token_id}", "200", "RevokeReadToken", "DELETE /tokens/{token_id}", by_id)
    link("DELETE /tokens/{token_id}", "200", "GetRevokedToken", "GET /tokens/{token_id}", by_id)
    link("DELETE /tokens/{token_id}", "200", "RevokeAgain", "DELETE /tokens/{token_id}", by_id)
    link("GET /v1/token", "200", "RevokeUsedToken", "DELETE /tokens/{token_id}", by_id)
    link("DELETE /v1/token", "200", "GetSelfRevokedToken", "GET /tokens/{token_id}", by_id)


def local_document(served: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(served))
    schemes = document["components"]["securitySchemes"]
    del schemes["consoleUser"]
    schemes.update(DEV_IDENTITY_SCHEMES)
    for operations in document["paths"].values():
        for operation in operations.values():
            if operation.get("security") == [{"consoleUser": []}]:
                operation["security"] = [{name: [] for name in DEV_IDENTITY_SCHEMES}]
    add_links(document)
    return document


# Loaded at collection time from the generator the server serves (pytest parametrizes over
# its operations before any fixture runs); test_the_fuzzed_document_is_the_served_one checks
# that it is the document the running server answers. Requests go to the running server.
schema = schemathesis.openapi.from_dict(local_document(openapi_document(PLACEHOLDER_URL)), config=CONFIG)


def test_the_fuzzed_document_is_the_served_one(server: RunningServer, served_document: dict[str, Any]) -> None:
    assert served_document["servers"] == [{"url": server.url}]
    assert {**served_document, "servers": None} == {**openapi_document(PLACEHOLDER_URL), "servers": None}
    assert {f"{method} {path}" for path, operations in served_document["paths"].items() for method in operations} == {
        f"{operation.method} {operation.path}" for operation in (result.ok() for result in schema.get_all_operations())
    }


# -- this module's checks -------------------------------------------------------------------


def is_token_route(path: str) -> bool:
    return path.startswith("/v1/")


def header(response: Any, name: str) -> str | None:
    """A header of a requests or a schemathesis response (the latter keeps lists of values)."""
    for key, value in response.headers.items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) else value)
    return None


def assert_well_formed(response: Any) -> None:
    """What every answer owes its caller, whatever was sent."""
    status = response.status_code
    assert status < 500, response.text
    if 200 <= status < 300:
        # Token metadata is private: no shared cache may keep it.
        assert header(response, "Cache-Control") == "no-store", (status, response.headers)
    if status >= 400:
        assert (header(response, "Content-Type") or "").startswith("application/json"), response.headers
        error = json.loads(response.text)["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        for internal in INTERNALS:
            assert internal not in response.text, response.text
    if status != 201:  # the create answer is the one place the secret appears
        assert not TOKEN_IN_TEXT.search(response.text), response.text


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES_PER_OPERATION)
def test_every_operation_answers_within_its_contract(case: Any, server: RunningServer, self_token: str) -> None:
    if is_token_route(case.path):
        # DELETE /v1/token revokes the token it is called with: give each call its own.
        token = mint_over_http(server)["token"] if case.method == "DELETE" else self_token
        headers = bearer(token)
    else:
        headers = console_identity()
    response = case.call_and_validate(base_url=server.url, headers=headers)
    assert_well_formed(response)

    if 200 <= response.status_code < 300 and not is_token_route(case.path):
        # The same request from an identity the Cognito authorizer would never vouch for.
        spoiled = case.call(base_url=server.url, headers={**headers, "X-Dev-Org-Id": "bad#org"})
        assert spoiled.status_code == 401, spoiled.text
        assert json.loads(spoiled.text)["error"]["code"] == "not_authenticated"


# -- /v1/token: any Authorization header that is not a live token is a 401 ----------------------


def checksummed(body: str) -> str:
    unchecked = f"lgk_{body}"
    return unchecked + checksum(unchecked)


BASE62 = st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# HTTP clients refuse header values with leading or trailing white space: send the rest.
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=120).map(str.strip)
AUTHORIZATION_HEADERS = st.one_of(
    HEADER_TEXT,
    HEADER_TEXT.map(lambda text: f"Bearer {text}"),
    st.lists(BASE62, min_size=48, max_size=48).map(lambda chars: f"Bearer {checksummed(''.join(chars))}"),
    st.sampled_from(["Bearer", "bearer x", "Basic dXNlcjpwYXNz", "Bearer lgk_", "Bearer lgk_" + "A" * 54]),
)


@given(header=st.one_of(st.none(), AUTHORIZATION_HEADERS), method=st.sampled_from(["GET", "DELETE"]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_v1_token_without_a_live_token_is_401(server: RunningServer, header: str | None, method: str) -> None:
    response = requests.request(
        method, f"{server.url}/v1/token", headers={} if header is None else {"Authorization": header}, timeout=30
    )
    assert response.status_code == 401, (header, response.status_code, response.text)
    # No Bearer credentials: the web ACL's challenge, without an error code (RFC 6750 section 3.1).
    presented = header is not None and re.match(r"(?i)bearer +[^ ]", header) is not None
    code = "invalid_token" if presented else "not_authenticated"
    challenge = 'Bearer realm="api-tokens", error="invalid_token"' if presented else 'Bearer realm="api-tokens"'
    assert response.headers["WWW-Authenticate"] == challenge
    assert response.json()["error"]["code"] == code
    assert_well_formed(response)


def test_a_console_request_without_identity_is_401_on_every_operation(
    server: RunningServer, served_document: dict[str, Any]
) -> None:
    """The server runs without a fallback identity, as the Cognito authorizer has none."""
    for label in operation_ids(served_document):
        method, path = label.split(" ", 1)
        if is_token_route(path):
            continue
        url = server.url + path.replace("{token_id}", "0" * 16)
        body = {"token_ids": ["0" * 16]} if path == "/tokens/revoke" else None
        if label == "POST /tokens":
            body = {"name": "x", "scopes": ["reports:read"]}
        if label == "PUT /settings":
            body = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 50}
        # Valid bodies, so that only the identity is missing (the local server lets the handler
        # answer for a missing identity, after its body checks; the Cognito authorizer answers first).
        body = {"PATCH /tokens/{token_id}": {"enabled": False}, "PUT /members/{user_id}": {"role": None}}.get(
            label, body
        )
        body = {"grace": "P1D"} if label == "POST /tokens/{token_id}/rotate" else body
        url = url.replace("{user_id}", "user-member")
        for headers in ({}, {**console_identity(), "X-Dev-Org-Id": "bad#org"}):
            response = requests.request(method, url, json=body, headers=headers, timeout=30)
            assert response.status_code == 401, (label, headers, response.text)
            assert response.json()["error"]["code"] == "not_authenticated"


# -- stateful: links, and nothing reachable after revocation -----------------------------------


def creatable_document(document: dict[str, Any]) -> dict[str, Any]:
    """The create request narrowed to what a member may actually create, so that the stateful
    phase mints tokens rather than collecting 400s: the member's scopes (from the catalog the
    service uses), a plain name, no expiry or one within the default maximum lifetime."""
    narrowed = json.loads(json.dumps(document))
    properties = narrowed["components"]["schemas"]["CreateTokenRequest"]["properties"]
    properties["scopes"]["items"] = {"enum": list(default_catalog().role("member").grantable_scopes)}
    properties["scopes"]["maxItems"] = 8
    properties["name"]["pattern"] = "^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$"
    today = datetime.now(UTC).date()
    future = [(today + timedelta(days=days)).isoformat() for days in (2, 30, 300)]
    properties["expires_at"] = {"anyOf": [{"enum": future}, {"type": "null"}]}
    return narrowed


def lifecycle_machine(server: RunningServer) -> type:
    linked = schemathesis.openapi.from_dict(
        creatable_document(local_document(openapi_document(PLACEHOLDER_URL))), config=CONFIG
    ).include(path_regex=r"^/(tokens(/\{token_id\})?|v1/token)$")
    base = linked.as_state_machine()

    class TokenLifecycle(base):  # type: ignore[misc, valid-type]
        """One user per scenario; remembers every secret it was handed and every revoke."""

        def setup(self) -> None:
            self.identity = console_identity(org=STATEFUL_ORG, role="member")
            self.secrets: dict[str, str] = {}  # token_id -> secret
            self.revoked: set[str] = set()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            if is_token_route(case.path):
                # A linked call carries the created token; a root call has none: 401.
                return {"base_url": server.url}
            return {"base_url": server.url, "headers": self.identity}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen.append((case.method, case.path, response.status_code))
            if response.status_code >= 300:
                return
            body = response.json()
            if case.method == "POST" and case.path == "/tokens":
                self.secrets[body["token_id"]] = body["token"]
            if case.method == "DELETE":
                assert body["status"] == "revoked", body
                self.revoked.add(body["token_id"])
            if case.method == "GET" and body.get("token_id") in self.revoked:
                assert body["status"] == "revoked", body

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            super().validate_response(response, case, additional_checks, **kwargs)
            assert_well_formed(response)
            if is_token_route(case.path) and "Authorization" not in case.headers:
                assert response.status_code == 401, response.text

        @invariant()
        def revoked_tokens_reach_nothing(self) -> None:
            for token_id in self.revoked:
                secret = self.secrets.get(token_id)
                if secret is None:
                    continue
                for method in ("GET", "DELETE"):
                    response = requests.request(method, f"{server.url}/v1/token", headers=bearer(secret), timeout=30)
                    assert response.status_code == 401, (method, token_id, response.text)
                    checked_after_revoke.add(token_id)

    return TokenLifecycle


seen: list[tuple[str, str, int]] = []
checked_after_revoke: set[str] = set()


def test_stateful_create_use_revoke(server: RunningServer) -> None:
    lifecycle_machine(server).run(
        settings=hypothesis.settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,  # the same scenarios every run: the coverage asserted below holds
            phases=[hypothesis.Phase.generate],
        )
    )
    # The links were followed: tokens were created, used, revoked (both ways), and checked after.
    for step in (
        ("POST", "/tokens", 201),
        ("GET", "/tokens/{token_id}", 200),
        ("DELETE", "/tokens/{token_id}", 200),
        ("GET", "/v1/token", 200),
        ("DELETE", "/v1/token", 200),
        ("GET", "/v1/token", 401),
    ):
        assert step in seen, (step, sorted(set(seen)))
    assert len(checked_after_revoke) >= 5, checked_after_revoke


# -- the document declares what the service answers ---------------------------------------------

OVERSIZED = json.dumps({"name": "x" * 70_000, "scopes": ["reports:read"]})
VALID_BODIES = {
    "/tokens": {"name": "doc", "scopes": ["reports:read"]},
    "/settings": {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 1},
    "/tokens/revoke": {"token_ids": ["0" * 16]},
}


def test_every_status_the_service_answers_is_documented(server: RunningServer, served_document: dict[str, Any]) -> None:
    """Clients generated from /openapi.json, and conformance checks, know only documented statuses.
    Each status below is produced here, then looked up in the document."""
    identity = console_identity(org=f"org-doc-{uuid.uuid4().hex[:8]}")
    answered: dict[str, int] = {}

    def send(label: str, data: str, content_type: str = "application/json") -> None:
        method, path = label.split(" ", 1)
        headers = {**identity, "Content-Type": content_type}
        response = requests.request(method, server.url + path, data=data, headers=headers, timeout=30)
        assert_well_formed(response)
        answered[f"{label} -> {response.status_code}"] = response.status_code

    send("PUT /settings", json.dumps(VALID_BODIES["/settings"]))  # a cap of one active token
    send("POST /tokens", json.dumps(VALID_BODIES["/tokens"]))
    send("POST /tokens", json.dumps(VALID_BODIES["/tokens"]))  # over the cap
    for label in ("POST /tokens", "PUT /settings", "POST /tokens/revoke"):
        path = label.split(" ", 1)[1]
        send(label, OVERSIZED)
        send(label, json.dumps(VALID_BODIES[path]), "text/plain")
    assert set(answered.values()) == {200, 201, 409, 413, 415}, answered  # the service does answer them ...

    undocumented = sorted(
        key
        for key, status in answered.items()
        if str(status) not in served_document["paths"][key.split(" ")[1]][key.split(" ")[0].lower()]["responses"]
    )
    assert not undocumented, f"answered but missing from /openapi.json: {undocumented}"
