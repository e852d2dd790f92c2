"""The one table from errors to HTTP responses, and the JSON responses themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from token_service.domain.errors import (
    ActiveTokenLimitReached,
    ConcurrentModification,
    DomainError,
    FieldProblem,
    InvalidPageKey,
    InvalidRequest,
    NotAuthenticated,
    PermissionDenied,
    ScopeNotGrantable,
    StoreFailure,
    StoreUnavailable,
    TokenAlreadyRotated,
    TokenNotFound,
    TokenNotLive,
    UnknownScopes,
)
from token_service.http.pagination import INVALID_CURSOR
from token_service.http.rest import JsonResponse, RequestInvalid, RouteNotFound
from token_service.observability import logger

# Lookup follows the class hierarchy, so a subclass without its own row answers as its
# parent does.
ERROR_RESPONSES: dict[type[DomainError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request"),
    InvalidPageKey: (400, "invalid_request"),
    NotAuthenticated: (401, "not_authenticated"),
    ScopeNotGrantable: (403, "scope_not_grantable"),
    PermissionDenied: (403, "forbidden"),
    TokenNotFound: (404, "not_found"),
    ActiveTokenLimitReached: (409, "active_token_limit_reached"),
    ConcurrentModification: (409, "conflict"),
    TokenNotLive: (409, "token_not_active"),
    TokenAlreadyRotated: (409, "already_rotated"),
    StoreUnavailable: (503, "service_unavailable"),
    StoreFailure: (500, "internal_error"),
}
RETRY_AFTER_SECONDS = "1"
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_REASONS_BY_TYPE = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


class BodyRejected(Exception):
    """The request body is refused before routing (size, media type, JSON shape)."""

    def __init__(self, status: int, code: str, problem: FieldProblem) -> None:
        super().__init__(problem.reason)
        self.status, self.code, self.problem = status, code, problem


def json_response(
    status: int, payload: BaseModel | dict[str, Any], headers: dict[str, str] | None = None
) -> JsonResponse:
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    # Token metadata is private to its owner: no shared cache may keep any of it.
    return JsonResponse(status, body, {"Cache-Control": "no-store", **(headers or {})})


def cors_headers(origin: str | None) -> dict[str, str]:
    """The CORS headers of every answer of a console API function: the console's origin itself,
    never `*`, and Vary: Origin for caches; none without an origin. API Gateway answers the
    preflights and adds the same to its own errors (template.yaml: Cors, GatewayResponses)."""
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin else {}


def error_response(status: int, code: str, message: str, problems: Sequence[FieldProblem] = ()) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if problems:
        error["fields"] = [{"field": problem.field, "reason": problem.reason} for problem in problems]
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return json_response(status, {"error": error}, headers)


def _plain_reason(error: Any) -> str | None:
    """Length and count limits in plain words, not pydantic's ("String should have at least 1 character")."""
    kind, context = error.get("type", ""), error.get("ctx") or {}
    if kind == "string_too_short":
        low = context.get("min_length", 1)
        return "must not be empty" if low == 1 else f"must be at least {low} characters"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    if kind == "too_short":
        low = context.get("min_length", 1)
        return "must not be empty" if low == 1 else f"must have at least {low} items"
    if kind == "too_long":
        return f"must have at most {context.get('max_length')} items"
    return None


def problems_from_validation(errors: Sequence[Any]) -> list[FieldProblem]:
    problems = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in _LOCATIONS:
            location = location[1:] if len(location) > 1 and error.get("type") != "json_invalid" else location[:1]
        field = ".".join(location) or "body"
        reason = _plain_reason(error) or _REASONS_BY_TYPE.get(
            error.get("type", ""), str(error.get("msg", "is not valid"))
        )
        reason = reason.removeprefix("Value error, ")
        # Cross-field validators name their field as "field: reason".
        named_field, separator, rest = reason.partition(": ")
        if separator and named_field.replace("_", "").isalnum() and field in {"body", "query"}:
            field, reason = named_field, rest
        problems.append(FieldProblem(field=field, reason=reason))
    return problems


def _field_problems(error: DomainError) -> list[FieldProblem]:
    """The fields a domain error is about, in the API's words (routes and parameters)."""
    if isinstance(error, UnknownScopes):
        return [FieldProblem("scopes", f"unknown scope(s): {', '.join(error.scopes)}; see GET /scopes")]
    if isinstance(error, InvalidRequest):
        return error.problems
    if isinstance(error, InvalidPageKey):
        return [FieldProblem("next", INVALID_CURSOR)]
    if isinstance(error, ScopeNotGrantable):
        return [FieldProblem("scopes", f"your role may not grant: {', '.join(error.scopes)}")]
    return []


def response_for(error: Exception) -> JsonResponse:
    """The one table's answer to anything a handler raised."""
    if isinstance(error, RequestInvalid):
        return error_response(
            400, "invalid_request", "The request is not valid.", problems_from_validation(error.errors)
        )
    if isinstance(error, BodyRejected):
        return error_response(error.status, error.code, "The request is not valid.", [error.problem])
    if isinstance(error, RouteNotFound):
        return error_response(404, "not_found", "No such route.")
    if not isinstance(error, DomainError):
        logger.exception("Unhandled error")
        return error_response(500, "internal_error", "The service failed to process the request.")
    status, code = next(ERROR_RESPONSES[kind] for kind in type(error).__mro__ if kind in ERROR_RESPONSES)
    if status >= 500:
        logger.exception("Storage failure", extra={"error_type": type(error.__cause__).__name__})
    message = "The request is not valid." if isinstance(error, InvalidPageKey) else str(error)
    return error_response(status, code, message, _field_problems(error))
