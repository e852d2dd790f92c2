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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_SCHEMA_REF = "#/components/schemas/{model}"
ERROR_SCHEMA_REF = "#/components/schemas/Error"
CATALOG_KEYWORD = "x-catalog"  # token_service.http.models.CatalogName's marker
# What an error status means, unless a route says more (responses.py's table maps errors to them).
ERROR_DESCRIPTIONS = {
    400: "The request is not valid: the answer names each field and the reason.",
    401: "No valid identity (console) or token (API).",
    403: "Your role, or the token's scopes, do not allow this.",
    404: "No such token, or not yours.",
    409: "A state conflict; see the message.",
    413: "The request body is too large.",
    415: "The request body is not application/json.",
    429: "Too many requests: API Gateway's stage throttle.",
    503: "Temporarily unavailable; retry after Retry-After seconds.",
}


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
    errors: Mapping[int, str]  # the error statuses the handler may answer besides a 400 for its input
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
        errors: Mapping[int, str] | Collection[int] = (),
    ) -> Callable[[Callable[..., JsonResponse]], Callable[..., JsonResponse]]:
        """Registers a handler. It is called with `path`, `query` and `body`: the validated
        models of those it declares. `errors`: the error statuses it may answer besides the
        400 of invalid input (and the 413 and 415 of a body), for the OpenAPI document; a
        mapping says when, where ERROR_DESCRIPTIONS' general words are not enough."""
        described = dict(errors) if isinstance(errors, Mapping) else dict.fromkeys(errors, "")

        def register(handler: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
            self.routes.append(
                Route(
                    method,
                    path,
                    handler,
                    summary,
                    response,
                    status,
                    description,
                    body,
                    query,
                    path_parameters,
                    described,
                )
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

    def openapi_paths(self, enums: Mapping[str, Sequence[str]] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """The routes as OpenAPI 3.1 path items, and the component schemas they refer to.

        The schemas are the models' own: what validates a request is what the document says.
        `enums` are the loaded catalog's names ("scopes", "roles"): a field marked as one of
        them (models.CatalogName) is documented as that enum."""
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
                },
                **{str(status): error_response(text) for status, text in _route_errors(route).items()},
            }
            paths.setdefault(route.path, {})[route.method.lower()] = operation
        return _with_enums(paths, enums or {}), _with_enums(definitions.get("$defs", {}), enums or {})


def error_response(description: str) -> dict[str, Any]:
    """An error answer in the document: the one error body every error has."""
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}}


def _route_errors(route: Route) -> dict[int, str]:
    """The error statuses of a route, with what each means: its input's, then its own."""
    errors: dict[int, str] = {}
    if route.body or route.query or route.path_parameters:
        errors[400] = ERROR_DESCRIPTIONS[400]
    if route.body is not None:
        errors[413] = ERROR_DESCRIPTIONS[413]
        errors[415] = ERROR_DESCRIPTIONS[415]
    for status, text in route.errors.items():
        errors[status] = text or ERROR_DESCRIPTIONS[status]
    return dict(sorted(errors.items()))


def _with_enums(value: Any, enums: Mapping[str, Sequence[str]]) -> Any:
    """`value` with each catalog marker replaced by the catalog's names, as an enum."""
    if isinstance(value, list):
        return [_with_enums(item, enums) for item in value]
    if not isinstance(value, dict):
        return value
    replaced = {key: _with_enums(item, enums) for key, item in value.items()}
    kind = replaced.get(CATALOG_KEYWORD)
    if isinstance(kind, str) and kind in enums:
        del replaced[CATALOG_KEYWORD]
        replaced["enum"] = list(enums[kind])
    return replaced


def _parameters(model: type[BaseModel] | None, location: str) -> list[dict[str, Any]]:
    """A model's fields as parameters. A parameter is absent or a string, never null: an
    optional field's null alternative is left out."""
    if model is None:
        return []
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, property_schema in schema.get("properties", {}).items():
        parameter = {"name": name, "in": location, "required": location == "path" or name in required}
        if "description" in property_schema:
            parameter["description"] = property_schema["description"]
        parameters.append({**parameter, "schema": _not_null(property_schema)})
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    alternatives = schema.get("anyOf")
    if not isinstance(alternatives, list):
        return schema
    kept = [alternative for alternative in alternatives if alternative != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(alternatives):
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf" and not (key == "default" and value is None)}
    return {**rest, **kept[0]}
