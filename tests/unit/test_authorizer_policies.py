"""The authorizer's answers read as API Gateway reads them: no cached or wildcard policy
allows what the token may not do, and none refuses what it may (REQUEST and HTTP APIs).

For every token and every pair of requests that API Gateway would answer from the same
cache entry (the same values of the identity sources template.yaml declares), the answer
returned for the first, matched with API Gateway's rules (`*` and `?` match any characters,
`/` included), allows the second exactly when the authorizer's own decision for the second
allows it. The requests cover the whole route map and paths it does not hold: deeper
paths, siblings, other methods."""

from __future__ import annotations

import itertools
import re
from typing import Any, NamedTuple

import pytest

from devserver.gateway import policy_allows
from token_service.domain.authorizer import TokenAuthorizer
from token_service.domain.records import TokenGrant
from token_service.domain.routes import load_route_map, parse_route_map
from token_service.domain.token_format import generate_token, hash_token
from token_service.http.authorizer_events import AuthorizerUnavailable, Unauthorized, parse_event, respond

PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
NOW = 1_900_000_000
REPORTS_MAP = {
    "routes": {
        "GET /v1/reports": ["reports:read"],
        "GET /v1/reports/{report_id}": ["reports:read"],
        "GET /v1/reports/{report_id}/export": ["export:read"],
        "GET /v1/reports/latest": ["admin:read"],
        "DELETE /v1/reports/{report_id}": ["reports:write"],
        "GET /v1/files/{path+}": ["files:read"],
    }
}
# Resources an API may have beyond the route map: deeper, sibling, other method.
UNMAPPED = ["GET /v1/reports/{report_id}/raw-export", "GET /v1/reports-archive", "POST /v1/reports/{report_id}"]
VALUES = ["42", "7", "latest", "a*b"]


class Call(NamedTuple):
    method: str
    resource: str  # the API Gateway resource template
    path: str  # the concrete path


def calls_of(resources: list[str]) -> list[Call]:
    calls = []
    for key in resources:
        method, resource = key.split(" ", 1)
        names = re.findall(r"\{[^}]+\}", resource)
        for values in itertools.product(VALUES, repeat=len(names)) if names else [()]:
            path = resource
            for name, value in zip(names, values, strict=True):
                path = path.replace(name, value if not name.endswith("+}") else f"{value}/deeper/{value}", 1)
            calls.append(Call(method, resource, path))
    return calls


class Store:
    """The authorizer's store with fixed tokens (no AWS in the unit tier)."""

    def __init__(self, records: dict[str, TokenGrant]) -> None:
        self.records = records

    def get_grant(self, token_id: str) -> TokenGrant | None:
        return self.records.get(token_id)

    def record_use(self, token_id: str, used_at: int, source_ip: str | None, not_since: int) -> None:
        return None


def token_with(scopes: tuple[str, ...]) -> tuple[str, TokenGrant]:
    parsed = generate_token("lgk")
    grant = TokenGrant(
        token_id=parsed.token_id,
        org_id="org-acme",
        owner_id="user-1",
        scopes=scopes,
        expires_at=NOW + 86_400,
        secret_hash=hash_token(parsed.token),
        hash_version=1,
    )
    return parsed.token, grant


def rest_event(kind: str, token: str, call: Call) -> dict[str, Any]:
    method_arn = f"{PREFIX}/{call.method}{call.path}"
    if kind == "TOKEN":
        return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": method_arn}
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": call.resource,
        "path": call.path,
        "httpMethod": call.method,
        "headers": {"Authorization": f"Bearer {token}"},
        "requestContext": {"identity": {"sourceIp": "203.0.113.1"}, "resourcePath": call.resource},
    }


def http_event(token: str, call: Call) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": f"{call.method} {call.resource}",
        "headers": {"authorization": f"Bearer {token}"},
        "requestContext": {
            "routeKey": f"{call.method} {call.resource}",
            "http": {"method": call.method, "path": call.path, "sourceIp": "203.0.113.1"},
        },
    }


def answer(authorizer: TokenAuthorizer, event: dict[str, Any]) -> dict[str, Any] | None:
    """What the handler returns for the event; None when it raises (401, never cached as an allow)."""
    request = parse_event(event)
    decision = authorizer.decide(request.header, request.method, request.path, request.source_ip)
    try:
        return respond(decision, request)
    except (Unauthorized, AuthorizerUnavailable):
        return None


def allowed(authorizer: TokenAuthorizer, event: dict[str, Any]) -> bool:
    request = parse_event(event)
    return authorizer.decide(request.header, request.method, request.path, request.source_ip).allowed


ROUTE_MAPS = {"reports": parse_route_map(REPORTS_MAP), "default": load_route_map()}


def world(map_name: str) -> tuple[TokenAuthorizer, list[str], list[Call]]:
    routes = ROUTE_MAPS[map_name]
    scopes = sorted({scope for route in routes for scope in route.required_scopes})
    scope_sets = [(), tuple(scopes), *((scope,) for scope in scopes)]
    tokens = dict(token_with(scope_set) for scope_set in scope_sets)
    store = Store({record.token_id: record for record in tokens.values()})
    authorizer = TokenAuthorizer(store, routes, "lgk", clock=lambda: NOW)
    resources = [f"{route.method} {route.resource}" for route in routes] + UNMAPPED
    return authorizer, list(tokens), calls_of(resources)


@pytest.mark.parametrize("map_name", sorted(ROUTE_MAPS))
def test_a_request_authorizer_policy_is_exact_for_its_cache_entry(map_name: str) -> None:
    """Identity sources: Authorization, $context.httpMethod, $context.resourcePath."""
    authorizer, tokens, calls = world(map_name)
    checked = 0
    for token in tokens:
        for first, second in itertools.product(calls, repeat=2):
            if (first.method, first.resource) != (second.method, second.resource):
                continue  # another cache entry
            policy = answer(authorizer, rest_event("REQUEST", token, first))
            expected = allowed(authorizer, rest_event("REQUEST", token, second))
            gateway_allows = policy is not None and policy_allows(policy, f"{PREFIX}/{second.method}{second.path}")
            assert gateway_allows == expected, (token[:20], first, second, policy)
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("map_name", sorted(ROUTE_MAPS))
def test_a_token_authorizer_policy_never_over_grants_on_any_route(map_name: str) -> None:
    """One cache entry per token serves every route: whatever the first request was, the
    cached policy allows no request the authorizer would refuse."""
    authorizer, tokens, calls = world(map_name)
    for token in tokens:
        for first in calls:
            policy = answer(authorizer, rest_event("TOKEN", token, first))
            if policy is None:
                continue
            for second in calls:
                if policy_allows(policy, f"{PREFIX}/{second.method}{second.path}"):
                    assert allowed(authorizer, rest_event("TOKEN", token, second)), (token[:20], first, second)


@pytest.mark.parametrize("map_name", sorted(ROUTE_MAPS))
def test_an_http_api_answer_is_exact_for_its_cache_entry(map_name: str) -> None:
    """Identity sources: $request.header.Authorization and $context.routeKey."""
    authorizer, tokens, calls = world(map_name)
    for token in tokens:
        for first, second in itertools.product(calls, repeat=2):
            if (first.method, first.resource) != (second.method, second.resource):
                continue
            cached = answer(authorizer, http_event(token, first))
            assert cached is not None
            assert cached["isAuthorized"] == allowed(authorizer, http_event(token, second)), (first, second)


def test_the_reported_over_grant_is_closed() -> None:
    """reports:read only: GET /v1/reports/42/export and an unmapped deeper path are refused by
    the very policy the first request gets, with and without a cache."""
    authorizer, _, _ = world("reports")
    token, record = token_with(("reports:read",))
    authorizer.repository.records[record.token_id] = record  # type: ignore[attr-defined]
    for call in (
        Call("GET", "/v1/reports/{report_id}/export", "/v1/reports/42/export"),
        Call("GET", "/v1/reports/{report_id}/raw-export", "/v1/reports/1/raw-export"),
    ):
        for kind in ("REQUEST", "TOKEN"):
            policy = answer(authorizer, rest_event(kind, token, call))
            assert policy is not None and not policy_allows(policy, f"{PREFIX}/{call.method}{call.path}"), kind
    first = answer(authorizer, rest_event("TOKEN", token, Call("GET", "/v1/reports/{report_id}", "/v1/reports/42")))
    assert first is not None and policy_allows(first, f"{PREFIX}/GET/v1/reports/42")
    assert not policy_allows(first, f"{PREFIX}/GET/v1/reports/42/export")
    assert policy_allows(first, f"{PREFIX}/GET/v1/reports")  # a parameter-free route it may use
