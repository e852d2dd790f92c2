"""A small resolver for API Gateway REST proxy events: routes, pydantic validation, OpenAPI.

The management functions used Powertools' APIGatewayRestResolver for exactly this. Its
package import brings in every resolver Powertools has (AppSync, Bedrock, VPC Lattice...,
and asyncio with them): about 40 ms of each function's cold start (docs/performance.md,
figure 3). This module keeps the part the service uses and knows nothing of HTTP errors
beyond "no such route" and "input failed its model": api.py maps those and the domain
errors to responses in one table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_SCHEMA_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def proxy_result(self) -> dict[str, Any]:
        """The Lambda proxy integration's response."""
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json", **self.headers},
            "body": json.dumps(self.body, separators=(",", ":")),
            "isBase64Encoded": False,
        }


class RouteNotFound(Exception):
    """No route has this method and path."""


class RequestInvalid(Exception):
    """The path, query or body failed its model; pydantic's errors, located under
    ("path" | "query" | "body", ...)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI form: /tokens/{token_id}
    handler: Callable[..., JsonResponse]
    summary: str
    response: type[BaseModel]
    status: int
    description: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    path_parameters: type[BaseModel] | None
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        # A path parameter is one whole, non-empty segment, as API Gateway's {name} is; API
        # Gateway hands /tokens/ to the /tokens resource with the slash still in the path.
        segments = [
            f"(?P<{name.group(1)}>[^/]+)" if (name := _PATH_PARAMETER.fullmatch(segment)) else re.escape(segment)
            for segment in self.path.split("/")
        ]
        object.__setattr__(self, "pattern", re.compile("/".join(segments) + "/*"))

    @property
    def operation_id(self) -> str:
        # As Powertools and FastAPI name operations: list_tokens_tokens_get.
        return self.handler.__name__ + re.sub(r"\W", "_", self.path) + "_" + self.method.lower()


class RestResolver:
    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.current_event: dict[str, Any] = {}

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        response: type[BaseModel],
        status: int = 200,
        description: str = "Successful Response",
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        path_parameters: type[BaseModel] | None = None,
    ) -> Callable[[Callable[..., JsonResponse]], Callable[..., JsonResponse]]:
        """Registers a handler. It is called with `path`, `query` and `body`: the validated
        models of those it declares."""

        def register(handler: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
            self.routes.append(
                Route(method, path, handler, summary, response, status, description, body, query, path_parameters)
            )
            return handler

        return register

    def resolve(self, event: dict[str, Any], document: dict[str, Any] | None) -> JsonResponse:
        """Calls the route's handler; `document` is the request body, already parsed."""
        method = str(event.get("httpMethod") or "").upper()
        path = str(event.get("path") or "/")
        for route in self.routes:
            match = route.pattern.fullmatch(path)
            if match is not None and route.method == method:
                break
        else:
            raise RouteNotFound(f"{method} {path}")
        self.current_event = event
        arguments: dict[str, BaseModel] = {}
        errors: list[dict[str, Any]] = []
        # The route is matched on `path`, which API Gateway passes as sent (percent-encoded);
        # the values are its `pathParameters`, decoded once.
        decoded = event.get("pathParameters") or {}
        parameters = {name: decoded.get(name, value) for name, value in match.groupdict().items()}
        inputs = (
            ("path", route.path_parameters, parameters),
            ("query", route.query, event.get("queryStringParameters") or {}),
            ("body", route.body, document),
        )
        if route.query is not None:
            # API Gateway keeps the last of repeated parameters; two values are two requests.
            repeated = event.get("multiValueQueryStringParameters") or {}
            errors += [
                {"type": "repeated", "loc": ("query", name), "msg": "appears more than once"}
                for name, values in repeated.items()
                if name in route.query.model_fields and isinstance(values, list) and len(values) > 1
            ]
        for location, model, value in inputs:
            if model is None:
                continue
            if value is None:
                errors.append({"type": "missing", "loc": (location,), "msg": "Field required"})
                continue
            try:
                arguments[location] = model.model_validate(value)
            except ValidationError as invalid:
                errors.extend({**error, "loc": (location, *error["loc"])} for error in invalid.errors())
        if errors:
            raise RequestInvalid(errors)
        return route.handler(**arguments)

    def openapi_paths(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The routes as OpenAPI 3.1 path items, and the component schemas they refer to."""
        from pydantic.json_schema import models_json_schema  # the dev server's, not a function's, import

        models: list[tuple[type[BaseModel], Any]] = []
        for route in self.routes:
            models.append((route.response, "serialization"))
            if route.body is not None:
                models.append((route.body, "validation"))
        references, definitions = models_json_schema(models, ref_template=_SCHEMA_REF)
        paths: dict[str, Any] = {}
        for route in self.routes:
            operation: dict[str, Any] = {"summary": route.summary, "operationId": route.operation_id}
            parameters = _parameters(route.path_parameters, "path") + _parameters(route.query, "query")
            if parameters:
                operation["parameters"] = parameters
            if route.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": references[(route.body, "validation")]}},
                }
            operation["responses"] = {
                str(route.status): {
                    "description": route.description,
                    "content": {"application/json": {"schema": references[(route.response, "serialization")]}},
                }
            }
            paths.setdefault(route.path, {})[route.method.lower()] = operation
        return paths, definitions.get("$defs", {})


def _parameters(model: type[BaseModel] | None, location: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        parameter = {"name": name, "in": location, "required": location == "path" or name in required}
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        parameters.append({**parameter, "schema": property_schema})
    return parameters
