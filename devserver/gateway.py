"""API Gateway REST proxy emulation: HTTP request -> proxy event -> real handler -> HTTP response."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from devserver.template import Route, api_routes

STAGE = "local"
API_ID = "localapi01"
ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class Identity:
    """The Cognito user a console request is made as."""

    user_id: str
    org_id: str
    role: str
    email: str = "user@example.com"

    def claims(self) -> dict[str, str]:
        return {
            "sub": self.user_id,
            "email": self.email,
            "custom:org_id": self.org_id,
            "custom:role": self.role,
            "cognito:username": self.user_id,
            "token_use": "id",
        }


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default_factory=lambda: time.time() + 10)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@cache
def load_handler_module(code_dir: Path, handler: str) -> ModuleType:
    """Imports functions/<name>/app.py under a unique module name (every function has an app.py)."""
    module_file, _ = handler.rsplit(".", 1)
    module_name = f"lambda_{code_dir.name}_{module_file}"
    spec = importlib.util.spec_from_file_location(module_name, code_dir / f"{module_file}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {code_dir / module_file}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def invoke(route: Route, event: dict[str, Any]) -> dict[str, Any]:
    module = load_handler_module(route.code_dir, route.handler)
    function = getattr(module, route.handler.rsplit(".", 1)[1])
    result: dict[str, Any] = function(event, LambdaContext(function_name=route.function))
    return result


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in api_routes():
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return None


def proxy_event(
    route: Route,
    path: str,
    path_parameters: Mapping[str, str],
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    body: str | None = None,
    authorizer: Mapping[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    headers = dict(headers or {})
    query = dict(query or {})
    return {
        "resource": route.resource,
        "path": path,
        "httpMethod": route.method,
        "headers": headers or None,
        "multiValueHeaders": {key: [value] for key, value in headers.items()} or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {key: [value] for key, value in query.items()} or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
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
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """A console call as the Cognito authorizer would pass it on (identity None: no claims)."""
    found = find_route(method, path)
    if found is None:
        return HttpResponse(404, {"Content-Type": "application/json"}, json.dumps({"message": "Not Found"}))
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
    result = invoke(route, event)
    response_headers = {key: str(value) for key, value in (result.get("headers") or {}).items()}
    for key, values in (result.get("multiValueHeaders") or {}).items():
        response_headers[key] = ", ".join(str(value) for value in values)
    return HttpResponse(int(result["statusCode"]), response_headers, result.get("body") or "")
