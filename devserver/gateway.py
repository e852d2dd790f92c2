"""API Gateway REST proxy emulation: HTTP request -> proxy event -> real handler -> HTTP response."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from devserver.template import RestApi, Route, api_routes, header_value, rest_apis
from devserver.waf import WafRequest, stage_web_acls

STAGE = "local"
API_ID = "localapi01"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def api_id_of(api_logical_id: str) -> str:
    """The local id of a RestApi: its logical id in lower case (ConsoleApi -> consoleapi)."""
    return api_logical_id.lower() or API_ID


# The app client of the sample events (events/*.json) and of Identity's claims by default.
SAMPLE_CLIENT_ID = "4example0client0id0abcdef"


@dataclass(frozen=True)
class Identity:
    """The Cognito user a console request is made as: the claims of an ID token of `client_id`."""

    user_id: str
    org_id: str
    role: str
    email: str = "user@example.com"
    client_id: str = SAMPLE_CLIENT_ID

    def claims(self) -> dict[str, str]:
        return {
            "sub": self.user_id,
            "email": self.email,
            "custom:org_id": self.org_id,
            "custom:role": self.role,
            "cognito:username": self.user_id,
            "aud": self.client_id,
            "token_use": "id",
        }


@dataclass
class LambdaContext:
    function_name: str
    timeout_seconds: float = 10  # the function's Timeout in template.yaml
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _started: float = field(default_factory=time.time)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._started + self.timeout_seconds - time.time()) * 1000))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


_IMPORT_LOCK = threading.Lock()


def load_handler_module(code_dir: Path, handler: str) -> ModuleType:
    """Imports functions/<name>/app.py under a unique module name (every function has an app.py).
    One at a time: two threads importing the same packages at once can see them half-initialised."""
    with _IMPORT_LOCK:
        return _load_handler_module(code_dir, handler)


@cache
def _load_handler_module(code_dir: Path, handler: str) -> ModuleType:
    module_file, _ = handler.rsplit(".", 1)
    module_name = f"lambda_{code_dir.name}_{module_file}"
    spec = importlib.util.spec_from_file_location(module_name, code_dir / f"{module_file}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {code_dir / module_file}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def invoke(route: Route, event: dict[str, Any]) -> HttpResponse:
    """Runs the route's real handler on a proxy event; its proxy result as an HTTP response."""
    module = load_handler_module(route.code_dir, route.handler)
    function = getattr(module, route.handler.rsplit(".", 1)[1])
    result: dict[str, Any] = function(event, LambdaContext(function_name=route.function))
    headers = {key: str(value) for key, value in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(value) for value in values)
    return HttpResponse(int(result["statusCode"]), headers, result.get("body") or "")


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in api_routes():
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return None


def api_of_path(path: str) -> str:
    """The RestApi (logical id) a path reaches when it matches no route: the one whose routes
    share the path's first segment; the console API otherwise (all APIs share one port here)."""
    first_segment = path.strip("/").split("/")[0]
    return next(
        (route.api for route in api_routes() if route.resource.strip("/").split("/")[0] == first_segment),
        next(logical_id for logical_id, api in rest_apis().items() if api.authorizer is None),
    )


def unknown_route(path: str) -> HttpResponse:
    """What API Gateway answers for a method and path no resource has: 403, through the API's
    MISSING_AUTHENTICATION_TOKEN gateway response (before any authorizer runs)."""
    api = rest_apis()[api_of_path(path)]
    return gateway_response(api, "MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


def web_acl_answer(
    api_logical_id: str, method: str, path: str, headers: Mapping[str, str], query: Query
) -> HttpResponse | None:
    """AWS WAF's answer when the web ACL associated with the API's stage blocks the request; it
    comes before routing, authorizers and gateway responses (devserver/waf.py). The example API
    stands in for your API with the token API's web ACL associated, as the README tells."""
    acl_api = api_logical_id
    if api_logical_id == EXAMPLE_API:
        acl_api = next(logical_id for logical_id, api in rest_apis().items() if api.authorizer is not None)
    acl = stage_web_acls().get(acl_api)
    answer = acl.inspect(WafRequest(method, path, headers, query)) if acl is not None else None
    return HttpResponse(answer.status, answer.headers, answer.body) if answer is not None else None


def arn_matches(pattern: str, arn: str) -> bool:
    """API Gateway's matching of a policy resource: `*` any characters and `?` one character,
    `/` included; every other character stands for itself (no fnmatch [sets])."""
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.fullmatch(regex, arn, re.DOTALL) is not None


def policy_allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """Evaluates an authorizer's IAM policy as API Gateway does: an explicit Deny wins, else any Allow."""
    effects = []
    for statement in policy.get("policyDocument", {}).get("Statement", []):
        resources = statement.get("Resource", [])
        for resource in [resources] if isinstance(resources, str) else resources:
            if arn_matches(resource, method_arn):
                effects.append(statement.get("Effect"))
    return "Allow" in effects and "Deny" not in effects


def context_variable(event: Mapping[str, Any], variable: str) -> str | None:
    """A `$context` variable of a REQUEST authorizer's identity sources (SAM's `Identity.Context`
    entries: httpMethod, resourcePath, identity.sourceIp, ...), read from the proxy event's
    requestContext, where API Gateway puts the same values. `identity.sourceIp` is the address of
    the TCP connection that sent the request (locally: the client's socket address), never an
    X-Forwarded-For header, which API Gateway does not use for it either."""
    value: Any = event.get("requestContext", {})
    for part in variable.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return str(value) if value is not None and not isinstance(value, Mapping) else None


def method_arn(api_id: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api_id}/{STAGE}/{method.upper()}{path}"


Query = Mapping[str, str | Sequence[str]]
"""A query string: each parameter's value, or its values in order when it is repeated."""


def proxy_event(
    route: Route,
    path: str,
    path_parameters: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    query: Query | None = None,
    body: str | None = None,
    authorizer: Mapping[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    headers = dict(headers or {})
    values = {name: [value] if isinstance(value, str) else list(value) for name, value in (query or {}).items()}
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": route.method,
        "headers": headers or None,
        "multiValueHeaders": {key: [value] for key, value in headers.items()} or None,
        # As API Gateway's REST proxy: the last value of a repeated parameter, and all of them.
        "queryStringParameters": {name: found[-1] for name, found in values.items() if found} or None,
        "multiValueQueryStringParameters": {name: found for name, found in values.items() if found} or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id_of(route.api),
            "resourceId": "local",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent", "")},
            "resourcePath": route.resource,
            "httpMethod": route.method,
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "authorizer": dict(authorizer or {}),
        },
        "body": body,
        "isBase64Encoded": False,
    }


def console_request(
    identity: Identity | None,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Query | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A console call as the Cognito authorizer would pass it on (identity None: no claims)."""
    found = find_route(method, path)
    if found is None:
        return unknown_route(path)
    route, parameters = found
    raw_body = body if isinstance(body, str) or body is None else json.dumps(body)
    all_headers = {"Content-Type": "application/json", **(headers or {})} if raw_body is not None else headers
    event = proxy_event(
        route,
        path,
        parameters,
        headers=all_headers,
        query=query,
        body=raw_body,
        authorizer={"claims": identity.claims()} if identity else {},
    )
    return invoke(route, event)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def gateway_response(api: RestApi, response_type: str, message: str) -> HttpResponse:
    """The RestApi's configured gateway response (template.yaml), as API Gateway renders it."""
    defaults = {
        "UNAUTHORIZED": 401,
        "ACCESS_DENIED": 403,
        "AUTHORIZER_FAILURE": 500,
        "AUTHORIZER_CONFIGURATION_ERROR": 500,
        "MISSING_AUTHENTICATION_TOKEN": 403,
    }
    family = "DEFAULT_5XX" if defaults.get(response_type, 400) >= 500 else "DEFAULT_4XX"
    configured = api.gateway_responses.get(response_type) or api.gateway_responses.get(family) or {}
    status = int(configured.get("StatusCode", defaults.get(response_type, 400)))
    headers = {
        name: resolved
        for name, value in configured.get("ResponseParameters", {}).get("Headers", {}).items()
        if (resolved := header_value(value, console_origin())) is not None
    }
    template = configured.get("ResponseTemplates", {}).get("application/json", json.dumps({"message": message}))
    body = template.replace("$context.error.messageString", json.dumps(message)).replace(
        "$context.error.responseType", response_type
    )
    return HttpResponse(status, {"Content-Type": "application/json", **headers}, body)


def console_origin() -> str | None:
    """The console's origin, which template.yaml names by its CloudFront distribution: locally the
    dev server itself, which sets CONSOLE_ORIGIN to its own URL for the functions and for this
    emulation (devserver/server.py). None: no console, so no header names its origin."""
    return os.environ.get("CONSOLE_ORIGIN") or None


def cors_preflight(path: str) -> HttpResponse | None:
    """API Gateway's answer to OPTIONS on a resource of an API with Cors (template.yaml): the
    OPTIONS method SAM adds, a mock integration without the authorizer, answering 200 with the
    configured headers whatever the request's Origin (the browser compares the allowed origin
    with its own). Allow-Methods, unless configured: the resource's methods and OPTIONS, sorted.
    None: the path's resource has no OPTIONS method (no Cors, or no such resource)."""
    route = next((route for route in api_routes() if route.pattern.fullmatch(path)), None)
    cors = rest_apis()[route.api].cors if route is not None else None
    if route is None or cors is None:
        return None
    own = [other.method for other in api_routes() if (other.api, other.resource) == (route.api, route.resource)]
    methods = cors.allow_methods or "'{}'".format(",".join(sorted({*own, "OPTIONS"})))
    configured = {
        "Access-Control-Allow-Origin": cors.allow_origin,
        "Access-Control-Allow-Headers": cors.allow_headers,
        "Access-Control-Allow-Methods": methods,
        "Access-Control-Max-Age": cors.max_age,
        "Access-Control-Allow-Credentials": "'true'" if cors.allow_credentials else None,
    }
    headers = {
        name: resolved
        for name, value in configured.items()
        if value is not None and (resolved := header_value(value, console_origin())) is not None
    }
    return HttpResponse(200, {"Content-Type": "application/json", **headers}, "{}")


@dataclass
class _CachedPolicy:
    policy: dict[str, Any]
    expires: float


EXAMPLE_API = "ExampleApi"


def example_api() -> RestApi:
    """Stands in for your API: the route map's routes, behind the token authorizer configured as
    on the stack's token API, answered by a backend that echoes what the authorizer passed on."""
    token_api = next(api for api in rest_apis().values() if api.authorizer is not None)
    return RestApi(EXAMPLE_API, token_api.authorizer, token_api.gateway_responses)


def example_routes(route_map_path: str | None) -> tuple[Route, ...]:
    from token_service.domain.routes import load_route_map

    served = {(route.method, route.resource) for route in api_routes()}
    return tuple(
        Route(route.method, route.resource, "ExampleBackend", Path(), "", route.pattern, EXAMPLE_API)
        for route in load_route_map(route_map_path)
        if (route.method, route.resource) not in served
    )


class LocalGateway:
    """API Gateway as deployed, for local runs: Cognito-style claims for console routes, the real
    token authorizer (with its cache, keyed by the identity sources template.yaml declares, its
    timeout and its gateway responses) for token-protected routes, and the example API."""

    def __init__(
        self,
        # The Cognito authorizer: the caller of a console request from its headers, as an Identity
        # or the ID token's claims; None refuses it (401) before any function runs.
        console_identity: Callable[[Mapping[str, str]], Identity | Mapping[str, str] | None],
        clock: Callable[[], float] = time.monotonic,
        extra_routes: tuple[Route, ...] = (),
        cache_seconds: int | None = None,
        authorizer_latency: float = 0.0,
    ):
        self.console_identity = console_identity
        self.clock = clock
        self.extra_routes = extra_routes
        self.cache_seconds = cache_seconds  # None: each authorizer's ReauthorizeEvery in template.yaml
        # How long an authorizer's answer takes to reach the gateway after the function read the
        # token (a cold start, a slow network): widens the window in which a revoke races a check.
        self.authorizer_latency = authorizer_latency
        self.flushes: list[dict[str, Any]] = []  # every flush, for GET /_dev/flushes
        self._cache: dict[tuple[str, ...], _CachedPolicy] = {}
        self._lock = threading.Lock()

    def flush_authorizer_cache(self, kind: str, api_id: str, stage: str) -> int:
        """FlushStageAuthorizersCache (restapis) and ResetAuthorizersCache (apis): the local APIs
        have one stage, so a flush of any other stage finds nothing."""
        with self._lock:
            keys = [key for key in self._cache if key[0] == api_id] if stage == STAGE else []
            for key in keys:
                del self._cache[key]
            self.flushes.append({"stage": f"{kind}/{api_id}/stages/{stage}", "at": time.time(), "dropped": len(keys)})
        print(f"authorizer cache flushed: {kind}/{api_id}/stages/{stage} ({len(keys)} cached answers)", flush=True)
        return len(keys)

    def find(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        found = find_route(method, path)
        if found is None:
            for route in self.extra_routes:
                parameters = route.match(method, path)
                if parameters is not None:
                    return route, parameters
        return found

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        query: Query,
        body: str | None,
        source_ip: str = "127.0.0.1",
    ) -> HttpResponse:
        found = self.find(method, path)
        blocked = web_acl_answer(found[0].api if found else api_of_path(path), method, path, headers, query)
        if blocked is not None:
            return blocked
        preflight = cors_preflight(path) if found is None and method == "OPTIONS" else None
        if preflight is not None:
            return preflight
        if found is None:
            return unknown_route(path)
        route, parameters = found
        # As API Gateway: pathParameters percent-decoded once; the event's path stays as sent.
        parameters = {name: unquote(value) for name, value in parameters.items()}
        api = example_api() if route.api == EXAMPLE_API else rest_apis()[route.api]
        if not route.authorized:  # Auth: Authorizer: NONE (the function checks the request itself)
            authorizer_context = {}
        elif api.authorizer is None:  # the Cognito user pool authorizer: no valid ID token, a 401
            caller = self.console_identity(headers)
            if caller is None:
                return gateway_response(api, "UNAUTHORIZED", "Unauthorized")
            claims = caller.claims() if isinstance(caller, Identity) else dict(caller)
            authorizer_context: dict[str, Any] = {"claims": claims}
        else:
            request = proxy_event(route, path, parameters, headers=headers, query=query, body=body, source_ip=source_ip)
            outcome = self._authorize(api, route, request)
            if isinstance(outcome, HttpResponse):
                return outcome
            authorizer_context = outcome
        if route.api == EXAMPLE_API:
            return HttpResponse(
                200, {"Content-Type": "application/json"}, json.dumps({"authorizer": authorizer_context})
            )
        event = proxy_event(
            route,
            path,
            parameters,
            headers=headers,
            query=query,
            body=body,
            authorizer=authorizer_context,
            source_ip=source_ip,
        )
        return invoke(route, event)

    def _authorize(self, api: RestApi, route: Route, request: dict[str, Any]) -> dict[str, Any] | HttpResponse:
        authorizer = api.authorizer
        assert authorizer is not None
        identity = []
        for name in authorizer.headers:
            value = _header(request["headers"] or {}, name)
            if not value:  # a missing identity source: 401 without invoking the function
                return gateway_response(api, "UNAUTHORIZED", "Unauthorized")
            identity.append(value)
        if authorizer.validation_expression and not re.search(authorizer.validation_expression, identity[0]):
            return gateway_response(api, "UNAUTHORIZED", "Unauthorized")
        for variable in authorizer.context:
            value = context_variable(request, variable)
            if not value:  # as a missing header: 401 without invoking the function
                return gateway_response(api, "UNAUTHORIZED", "Unauthorized")
            identity.append(value)
        api_id = api_id_of(api.logical_id)
        arn = method_arn(api_id, route.method, request["path"])
        key = (api_id, *identity)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is None or cached.expires <= now:
            if authorizer.payload_type == "TOKEN":
                event = {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": arn}
            else:
                event = {"type": "REQUEST", "methodArn": arn, **{k: v for k, v in request.items() if k != "body"}}
            module = load_handler_module(authorizer.function.code_dir, authorizer.function.handler)
            handler = getattr(module, authorizer.function.handler.rsplit(".", 1)[1])
            try:
                policy = handler(event, LambdaContext(authorizer.function.logical_id, authorizer.timeout_seconds))
            except Exception as error:  # a raised "Unauthorized" is a 401; any other failure, as a timeout
                if str(error) == "Unauthorized":
                    return gateway_response(api, "UNAUTHORIZED", "Unauthorized")
                return gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", "Internal server error")
            time.sleep(self.authorizer_latency)
            if self.clock() - now > authorizer.timeout_seconds or "policyDocument" not in policy:
                # API Gateway stopped waiting at the timeout: the late answer is neither used nor cached.
                return gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", "Internal server error")
            cache_seconds = authorizer.cache_seconds if self.cache_seconds is None else self.cache_seconds
            cached = _CachedPolicy(policy, now + cache_seconds)
            if cache_seconds > 0:
                with self._lock:
                    self._cache[key] = cached
        if not policy_allows(cached.policy, arn):
            return gateway_response(api, "ACCESS_DENIED", "User is not authorized to access this resource")
        # API Gateway passes the context on with every value turned into a string.
        context = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in cached.policy.get("context", {}).items()
        }
        return {**context, "principalId": str(cached.policy.get("principalId", ""))}
