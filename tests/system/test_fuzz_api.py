"""Schemathesis against the real local server (`python -m devserver`) and its `/openapi.json`.

The served document states every rule the handlers enforce (devserver/openapi.py), so
schemathesis runs with all its checks, on every operation, in positive and negative modes:

- the examples, coverage and fuzzing phases per operation (`test_every_operation_...`), with
  this module's own checks on top: never a 5xx, every error a JSON `{"error": {...}}` without
  internals, every success `no-store`, no secret outside the answers that mint one, and a
  console call that succeeded fails with 401 once the identity is invalid;
- the stateful phase over every operation (`test_stateful_...`), following the document's
  own OpenAPI links (ids from one answer into the next operation's path) and a few this
  module adds: a created token's secret into the Authorization header of the /v1/token
  routes, the scopes GET /scopes offers into a create, the policy GET /settings reads into a
  PUT. Invariants after every step: no revoked, disabled or expired token authorizes
  anything, and no token is visible to another organisation's admin;
- arbitrary `Authorization` headers on /v1/token: always 401, never anything else;
- every status the service answers is in the document.

The two checks that are off say why in CONFIG, one line each. A few rules depend on what no
schema can state (the clock, the organisation's policy, a cursor the server issued); they are
in the fields' descriptions and answer 400, and `complete` makes positive cases keep them, one
line each, so that positive_data_acceptance holds every operation to the rest.

How identity works here. The console's identity comes from the claims of a Cognito ID token
(`Authorization: <ID token>`, the document's `consoleUser` scheme). The tests start the local
server with --dev-identity-headers, where X-Dev-User-Id/X-Dev-Org-Id/X-Dev-Role headers stand
for a signed-in user, and without a fallback identity, so a request without any is what it is
on AWS (no claims: 401). The loaded document describes that stand-in: `consoleUser` becomes
the three X-Dev-* headers (apiKey schemes, all required), so `ignored_auth` can remove or
spoil them and expect a 401/403.
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
from token_service.domain.token_format import checksum, token_regex
from token_service.http.models import DATE_PATTERN, DATE_TIME_PATTERN

TOKEN_IN_TEXT = re.compile(token_regex("lgk").replace(r"\b", ""))
EXAMPLES_PER_OPERATION = 100
STATEFUL_SCENARIOS = 60
STATEFUL_STEPS = 12
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
            # Every method the document does not declare, HEAD, OPTIONS and TRACE included: API Gateway
            # answers them 403 (MISSING_AUTHENTICATION_TOKEN), which unsupported_method accepts.
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS, "generation": {"mode": "all"}},
        },
        "checks": {
            # Revoking is a state change, not a deletion: the owner still reads a revoked token (status
            # "revoked"), by design; that it no longer authorizes anything is this module's invariant.
            "use_after_free": {"enabled": False},
            # Its peer probe needs schemathesis' WFC multi-user auth, whose users carry fixed headers or a login,
            # not an X-Dev-* identity plus a minted bearer token; the stateful invariant below replaces it.
            "object_level_authorization": {"enabled": False},
            # 413: a body over 64 KiB is refused before it is parsed.
            "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "413", "415"]},
        },
    }
)


def complete(case: Any, cursors: dict[str, dict[str, Any]] | None = None) -> None:
    """Makes a positive case keep the rules that depend on what no schema can state. `cursors`:
    the `next` cursors the server issued, with the listing parameters they belong to."""
    if case.meta is None or case.meta.generation.mode != "positive":
        return
    body = case.body if isinstance(case.body, dict) else {}
    expiry = body.get("expires_at")
    if isinstance(expiry, str) and any(re.fullmatch(pattern, expiry) for pattern in (DATE_PATTERN, DATE_TIME_PATTERN)):
        # In the future and within the organisation's maximum lifetime (a day at least); the same format.
        now = datetime.now(UTC)
        is_date = re.fullmatch(DATE_PATTERN, expiry) is not None
        body["expires_at"] = (
            (now.date() + timedelta(days=1)).isoformat() if is_date else f"{now + timedelta(hours=1):%FT%TZ}"
        )
    cidrs = body.get("allowed_cidrs")
    if (case.method, case.path) == ("POST", "/tokens") and isinstance(cidrs, list) and cidrs:
        # The fuzzer's requests come from 127.0.0.1: a token with an address allowlist stays usable
        # by the steps that follow (the allowlist's refusals are tested in test_ip_allowlist.py).
        body["allowed_cidrs"] = [*cidrs[:19], "127.0.0.0/8"]
    if (case.method, case.path) == ("PUT", "/settings") and "max_lifetime_days" in body:
        # default_lifetime_days <= max_lifetime_days.
        low, high = sorted((body["max_lifetime_days"], body["default_lifetime_days"]))
        body.update(max_lifetime_days=high, default_lifetime_days=low)
    if (case.method, case.path) == ("GET", "/tokens") and case.query:
        query = dict(case.query)
        cursor = query.pop("next", None)
        if cursor is not None and cursor in (cursors or {}):  # a cursor goes with the listing that issued it
            query = {**cursors[cursor], "next": cursor, **({"limit": query["limit"]} if "limit" in query else {})}
        if str(query.get("all_users")).lower() == "true":  # owner_id and all_users=true exclude each other
            query.pop("owner_id", None)
        case.query = query
    if (case.method, case.path) == ("GET", "/audit") and case.query:
        query = dict(case.query)
        if query.get("next") not in (cursors or {}):  # a cursor goes with the listing that issued it
            query.pop("next", None)
        for bound in ("since", "until"):  # a day that does not exist (02-30, year 0) is a 400
            if isinstance(query.get(bound), str) and instant(query[bound]) is None:
                query.pop(bound)
        since, until = instant(query.get("since")), instant(query.get("until"))
        if since is not None and until is not None and since > until:
            query.update(since=query["until"], until=query["since"])  # until must not be before since
        case.query = query


def instant(value: object) -> datetime | None:
    """A date-time the schema accepts (RFC 3339 with an offset) as a moment; None if there is
    no such moment."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# -- the document, as the local server implements it -------------------------------------------


def operation_ids(document: dict[str, Any]) -> dict[str, str]:
    """'POST /tokens' -> operationId."""
    return {
        f"{method.upper()} {path}": operation["operationId"]
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    }


def add_links(document: dict[str, Any]) -> None:
    """OpenAPI links for the stateful phase besides the document's own (ids into paths): values
    that go where the document cannot point a link (a secret into the Authorization header, a
    read into a request body), so that every operation takes part."""
    ids = operation_ids(document)

    def link(source: str, status: str, name: str, target: str, **definition: Any) -> None:
        method, path = source.split(" ", 1)
        response = document["paths"][path][method.lower()]["responses"][status]
        response.setdefault("links", {})[name] = {"operationId": ids[target], **definition}

    use = {"header.Authorization": "Bearer {$response.body#/token}"}
    for source in ("POST /tokens", "POST /tokens/{token_id}/rotate", "POST /v1/token/rotate"):
        link(source, "201", "UseToken", "GET /v1/token", parameters=use)
        link(source, "201", "TokenRevokesItself", "DELETE /v1/token", parameters=use)
        link(source, "201", "TokenRotatesItself", "POST /v1/token/rotate", parameters=use)
    link(
        "GET /scopes",
        "200",
        "CreateWithAnOfferedScope",
        "POST /tokens",
        requestBody={"scopes": ["$response.body#/scopes/0/name"]},
    )
    policy = ("max_lifetime_days", "default_lifetime_days", "max_active_tokens_per_user", "revoke_unused_after_days")
    write_back = {field: f"$response.body#/{field}" for field in policy}
    link("GET /settings", "200", "WriteThePolicyBack", "PUT /settings", requestBody=write_back)
    link("PUT /settings", "200", "CreateUnderThePolicy", "POST /tokens")
    link("GET /tokens", "200", "NextPage", "GET /tokens", parameters={"query.next": "$response.body#/next"})
    link(
        "POST /tokens",
        "201",
        "ListTheOwnersTokens",
        "GET /tokens",
        parameters={"query.owner_id": "$response.body#/owner_id"},
    )
    # The audit log of what was just done, its chain, and a leak report of the new token (which
    # the fuzzer cannot sign: a 401 that changes nothing).
    audit_of_the_token = {"query.token_id": "$response.body#/token_id"}
    link("POST /tokens", "201", "AuditTheToken", "GET /audit", parameters=audit_of_the_token)
    link("GET /audit", "200", "VerifyTheChain", "GET /audit/verify")
    link("POST /tokens", "201", "ReportTheTokenLeaked", "POST /v1/secret-scanning")
    revoke = {"token_ids": ["$response.body#/token_id"]}
    link(
        "POST /tokens",
        "201",
        "RevokeInBulk",
        "POST /tokens/revoke",
        requestBody=revoke,
        **{"x-schemathesis": {"merge_body": False}},
    )


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
LOCAL_DOCUMENT = local_document(openapi_document(PLACEHOLDER_URL))
schema = schemathesis.openapi.from_dict(LOCAL_DOCUMENT, config=CONFIG)


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


def assert_well_formed(response: Any, method: str = "GET") -> None:
    """What every answer owes its caller, whatever was sent."""
    status = response.status_code
    assert status < 500, response.text
    if 200 <= status < 300 and method != "OPTIONS":  # (a CORS preflight's answer carries no data)
        # Token metadata is private: no shared cache may keep it.
        assert header(response, "Cache-Control") == "no-store", (status, response.headers)
    if status >= 400:
        assert (header(response, "Content-Type") or "").startswith("application/json"), response.headers
        if method != "HEAD":  # a HEAD answer has the GET answer's headers and no body
            error = json.loads(response.text)["error"]
            assert isinstance(error["code"], str) and error["code"]
            assert isinstance(error["message"], str) and error["message"]
        for internal in INTERNALS:
            assert internal not in response.text, response.text
    if status != 201:  # the answers that mint a token (create, rotate) are the one place a secret appears
        assert not TOKEN_IN_TEXT.search(response.text), response.text


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=EXAMPLES_PER_OPERATION)
def test_every_operation_answers_within_its_contract(case: Any, server: RunningServer, self_token: str) -> None:
    if case.path == "/v1/secret-scanning":  # the fuzzer cannot sign a report (partner's key): every case is a 401
        headers = {}
    elif is_token_route(case.path):
        # DELETE /v1/token revokes and POST /v1/token/rotate replaces the token it is called with:
        # give each such call its own.
        token = self_token if case.method == "GET" else mint_over_http(server)["token"]
        headers = bearer(token)
    else:
        headers = console_identity()
    complete(case)
    response = case.call_and_validate(base_url=server.url, headers=headers)
    assert_well_formed(response, case.method)

    if (
        200 <= response.status_code < 300
        and not is_token_route(case.path)
        and case.method == case.operation.method.upper()
    ):
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


# -- stateful: every operation, following links; refused tokens reach nothing ---------------------

REFUSED = {"revoked", "disabled", "expired"}  # a token in one of these states authorizes nothing


def lifecycle_machine(server: RunningServer) -> type:
    base = schema.as_state_machine()

    class TokenLifecycle(base):  # type: ignore[misc, valid-type]
        """One admin of a new organisation per scenario; remembers every secret it was handed
        and the last status it saw of every token."""

        def setup(self) -> None:
            self.identity = console_identity(org=f"org-stateful-{uuid.uuid4().hex[:8]}")
            self.outsider = console_identity(org=f"org-outsider-{uuid.uuid4().hex[:8]}")
            self.secrets: dict[str, str] = {}  # token_id -> secret
            self.status: dict[str, str] = {}  # token_id -> the last status an answer showed
            self.cursors: dict[str, dict[str, Any]] = {}  # an issued `next` -> its listing's parameters

        def before_call(self, case: Any) -> None:
            super().before_call(case)
            complete(case, self.cursors)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            if not is_token_route(case.path):
                return {"base_url": server.url, "headers": self.identity}
            if "Authorization" in case.headers:  # a linked call: the token an earlier answer minted
                return {"base_url": server.url}
            # A root call: the scenario's newest token that may still work, if there is one (else 401).
            usable = [token_id for token_id in self.secrets if self.status.get(token_id) not in REFUSED]
            headers = bearer(self.secrets[usable[-1]]) if usable else {}
            return {"base_url": server.url, "headers": headers}

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            seen.append((case.method, case.path, response.status_code))
            if not 200 <= response.status_code < 300:
                return
            body = response.json()
            if body.get("next"):
                listing = ("status", "owner_id", "all_users")
                self.cursors[body["next"]] = {key: case.query[key] for key in listing if key in (case.query or {})}
            views = [body, body.get("replaced") or {}, *body.get("items", [])]
            for view in (view for view in views if "token_id" in view and "status" in view):
                self.status[view["token_id"]] = view["status"]
                self.no_token_is_visible_to_another_organisation(view["token_id"])
            if "token" in body:
                self.secrets[body["token_id"]] = body["token"]
            for result in body.get("results", []):
                if result["result"] != "not_found":
                    self.status[result["token_id"]] = "revoked"
            if case.method == "DELETE":
                assert body["status"] == "revoked", body

        def no_token_is_visible_to_another_organisation(self, token_id: str) -> None:
            response = requests.get(f"{server.url}/tokens/{token_id}", headers=self.outsider, timeout=30)
            assert response.status_code == 404, (token_id, response.text)
            hidden_from_outsider.add(token_id)

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            super().validate_response(response, case, additional_checks, **kwargs)
            assert_well_formed(response, case.method)
            if is_token_route(case.path) and "Authorization" not in response.request.headers:
                # (The local HTTP layer refuses a body that is not UTF-8 before the web ACL runs: 400.)
                assert response.status_code == 401 or "not valid UTF-8" in response.text, response.text

        @invariant()
        def refused_tokens_reach_nothing(self) -> None:
            for token_id, status in self.status.items():
                secret = self.secrets.get(token_id)
                if secret is None or status not in REFUSED:
                    continue
                for method in ("GET", "DELETE"):
                    response = requests.request(method, f"{server.url}/v1/token", headers=bearer(secret), timeout=30)
                    assert response.status_code == 401, (method, token_id, status, response.text)
                checked_after_refusal.add((token_id, status))

    return TokenLifecycle


seen: list[tuple[str, str, int]] = []
checked_after_refusal: set[tuple[str, str]] = set()
hidden_from_outsider: set[str] = set()


def test_stateful_phase_on_every_operation(server: RunningServer, served_document: dict[str, Any]) -> None:
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
    called = {f"{method} {path}" for method, path, _ in seen}
    assert called == set(operation_ids(served_document)), sorted(set(operation_ids(served_document)) - called)
    # The links were followed: tokens were created, read, listed, used, rotated both ways and revoked every
    # way, and checked after; the policy and a membership were changed.
    for step in (
        ("POST", "/tokens", 201),
        ("GET", "/tokens", 200),
        ("GET", "/tokens/{token_id}", 200),
        ("DELETE", "/tokens/{token_id}", 200),
        ("POST", "/tokens/revoke", 200),
        ("POST", "/tokens/{token_id}/rotate", 201),
        ("GET", "/v1/token", 200),
        ("DELETE", "/v1/token", 200),
        ("POST", "/v1/token/rotate", 201),
        ("GET", "/v1/token", 401),
        ("PUT", "/members/{user_id}", 200),
        ("PUT", "/settings", 200),
    ):
        assert step in seen, (step, sorted(set(seen)))
    assert len({token_id for token_id, status in checked_after_refusal if status == "revoked"}) >= 5
    assert len(hidden_from_outsider) >= 10, hidden_from_outsider


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
