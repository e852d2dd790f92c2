"""The local API Gateway emulation honours the authorizer's policy, cache time and context."""

from __future__ import annotations

from typing import Any

from devserver.gateway import Identity, LocalGateway, load_handler_module
from devserver.template import ROOT, rest_apis
from token_service import wiring
from token_service.domain.identity import Caller
from token_service.http.models import CreateTokenRequest


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_authorizer_answers_are_cached_for_the_template_cache_time(dynamodb, monkeypatch):
    clock = Clock()
    gateway = LocalGateway(lambda _: Identity("alice", "org-acme", "admin"), clock=clock)
    secret = (
        wiring.get_service()
        .create_token(
            Caller("alice", "org-acme", "admin"), CreateTokenRequest(name="cached", scopes=["reports:read"]).command()
        )
        .secret
    )
    authorizer = load_handler_module(ROOT / "functions" / "authorizer", "app.lambda_handler")
    calls: list[dict[str, Any]] = []
    original = authorizer.lambda_handler

    def counting(event: dict[str, Any], context: Any) -> Any:
        calls.append(event)
        return original(event, context)

    monkeypatch.setattr(authorizer, "lambda_handler", counting)
    headers = {"Authorization": f"Bearer {secret}"}

    first = gateway.handle("GET", "/v1/token", headers, {}, None)
    assert first.status == 200
    assert len(calls) == 1 and calls[0]["type"] == "REQUEST"
    assert calls[0]["resource"] == "/v1/token" and calls[0]["requestContext"]["resourcePath"] == "/v1/token"
    assert first.json()["name"] == "cached"

    # Revoked behind the gateway's back (no flush): the cached policy still answers, as on AWS.
    wiring.get_service().repository.revoke(secret[4:20], "org-acme", None, 1, "test", 2)
    clock.now += rest_apis()["TokenApi"].authorizer.cache_seconds - 1
    assert gateway.handle("GET", "/v1/token", headers, {}, None).status == 200
    assert len(calls) == 1
    clock.now += 2
    expired_cache = gateway.handle("GET", "/v1/token", headers, {}, None)
    assert expired_cache.status == 401
    assert len(calls) == 2


def test_a_flush_drops_cached_policies(dynamodb):
    gateway = LocalGateway(lambda _: Identity("alice", "org-acme", "admin"), clock=Clock())
    secret = (
        wiring.get_service()
        .create_token(
            Caller("alice", "org-acme", "admin"), CreateTokenRequest(name="flushed", scopes=["reports:read"]).command()
        )
        .secret
    )
    headers = {"Authorization": f"Bearer {secret}"}
    assert gateway.handle("GET", "/v1/token", headers, {}, None).status == 200
    wiring.get_service().repository.revoke(secret[4:20], "org-acme", None, 1, "test", 2)
    gateway.flush_authorizer_cache("restapis", "tokenapi", "local")
    assert gateway.handle("GET", "/v1/token", headers, {}, None).status == 401


def test_console_routes_get_claims_and_token_routes_get_the_authorizer_context(dynamodb):
    gateway = LocalGateway(lambda _: Identity("bob", "org-acme", "viewer"), clock=Clock())
    scopes = gateway.handle("GET", "/scopes", {}, {}, None)
    assert scopes.json()["role"] == "viewer"
    secret = (
        wiring.get_service()
        .create_token(
            Caller("bob", "org-acme", "viewer"), CreateTokenRequest(name="ctx", scopes=["reports:read"]).command()
        )
        .secret
    )
    me = gateway.handle("GET", "/v1/token", {"authorization": f"Bearer {secret}"}, {}, None).json()
    assert (me["owner_id"], me["org_id"], me["scopes"]) == ("bob", "org-acme", ["reports:read"])


def mint_secret(name: str) -> str:
    caller = Caller("alice", "org-acme", "admin")
    return (
        wiring.get_service()
        .create_token(caller, CreateTokenRequest(name=name, scopes=["reports:read"]).command())
        .secret
    )


def counting_authorizer(monkeypatch: Any, behaviour: Any = None) -> list[dict[str, Any]]:
    authorizer = load_handler_module(ROOT / "functions" / "authorizer", "app.lambda_handler")
    calls: list[dict[str, Any]] = []
    original = authorizer.lambda_handler

    def counting(event: dict[str, Any], context: Any) -> Any:
        calls.append(event)
        return (behaviour or original)(event, context)

    monkeypatch.setattr(authorizer, "lambda_handler", counting)
    return calls


def test_the_cache_is_keyed_by_the_identity_sources_of_the_template(dynamodb, monkeypatch):
    """Authorization, method and resource path: one entry per route of a token, whatever its path."""
    gateway = LocalGateway(lambda _: Identity("alice", "org-acme", "admin"), clock=Clock())
    calls = counting_authorizer(monkeypatch)
    headers = {"Authorization": f"Bearer {mint_secret('keyed')}"}
    for method in ("GET", "GET", "DELETE"):
        gateway.handle(method, "/v1/token", headers, {}, None)
    assert [(call["httpMethod"], call["resource"]) for call in calls] == [("GET", "/v1/token"), ("DELETE", "/v1/token")]


def test_an_authorizer_that_fails_or_times_out_is_an_authorizer_configuration_error(dynamodb, monkeypatch):
    clock = Clock()
    gateway = LocalGateway(lambda _: Identity("alice", "org-acme", "admin"), clock=clock)
    headers = {"Authorization": f"Bearer {mint_secret('failing')}"}
    authorizer = load_handler_module(ROOT / "functions" / "authorizer", "app.lambda_handler")
    original = authorizer.lambda_handler

    def crash(event: dict[str, Any], context: Any) -> Any:
        raise RuntimeError("the authorizer crashed")

    def slow(event: dict[str, Any], context: Any) -> Any:
        clock.now += rest_apis()["TokenApi"].authorizer.timeout_seconds + 0.5  # answers after the timeout
        return original(event, context)

    for behaviour in (crash, slow):
        calls = counting_authorizer(monkeypatch, behaviour)
        response = gateway.handle("GET", "/v1/token", headers, {}, None)
        assert response.status == 503, response.body
        assert response.json()["error"]["code"] == "service_unavailable"
        assert response.headers["Retry-After"] == "1" and response.headers["Cache-Control"] == "no-store"
        assert len(calls) == 1
    # Nothing was cached: the next request asks the (now healthy) authorizer again.
    calls = counting_authorizer(monkeypatch, original)
    assert gateway.handle("GET", "/v1/token", headers, {}, None).status == 200 and len(calls) == 1
