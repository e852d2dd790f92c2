"""What every management handler shares: the resolver, identity, and one error table."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from token_service.aws import dynamodb_client
from token_service.cache_flush import flusher_from_env
from token_service.config import get_config
from token_service.errors import (
    ActiveTokenLimitReached,
    ConcurrentModification,
    DomainError,
    FieldProblem,
    InvalidRequest,
    NotAuthenticated,
    PermissionDenied,
    ScopeNotGrantable,
    StoreFailure,
    StoreUnavailable,
    TokenNotFound,
)
from token_service.identity import Caller, caller_from_claims
from token_service.observability import get_tracer, logger, metrics
from token_service.repository import TokenRepository
from token_service.rest import JsonResponse, RequestInvalid, RestResolver, RouteNotFound
from token_service.scopes import default_catalog
from token_service.service import TokenService

# The one table from domain errors to HTTP. Lookup follows the class hierarchy, so a
# subclass without its own row answers as its parent does.
ERROR_RESPONSES: dict[type[DomainError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request"),
    NotAuthenticated: (401, "not_authenticated"),
    ScopeNotGrantable: (403, "scope_not_grantable"),
    PermissionDenied: (403, "forbidden"),
    TokenNotFound: (404, "not_found"),
    ActiveTokenLimitReached: (409, "active_token_limit_reached"),
    ConcurrentModification: (409, "conflict"),
    StoreUnavailable: (503, "service_unavailable"),
    StoreFailure: (500, "internal_error"),
}
RETRY_AFTER_SECONDS = "1"
MAX_BODY_CHARACTERS = 64 * 1024  # the largest valid request is a few kilobytes
_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_REASONS_BY_TYPE = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}


def json_response(
    status: int, payload: BaseModel | dict[str, Any], headers: dict[str, str] | None = None
) -> JsonResponse:
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    # Token metadata is private to its owner: no shared cache may keep any of it.
    return JsonResponse(status, body, {"Cache-Control": "no-store", **(headers or {})})


def error_response(status: int, code: str, message: str, problems: Sequence[FieldProblem] = ()) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if problems:
        error["fields"] = [{"field": problem.field, "reason": problem.reason} for problem in problems]
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return json_response(status, {"error": error}, headers)


def problems_from_validation(errors: Sequence[Any]) -> list[FieldProblem]:
    problems = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in _LOCATIONS:
            location = location[1:] if len(location) > 1 and error.get("type") != "json_invalid" else location[:1]
        field = ".".join(location) or "body"
        reason = _REASONS_BY_TYPE.get(error.get("type", ""), str(error.get("msg", "is not valid")))
        reason = reason.removeprefix("Value error, ")
        # Cross-field validators name their field as "field: reason".
        named_field, separator, rest = reason.partition(": ")
        if separator and named_field.replace("_", "").isalnum() and field == "body":
            field, reason = named_field, rest
        problems.append(FieldProblem(field=field, reason=reason))
    return problems


def create_app() -> RestResolver:
    return RestResolver()


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
    problems: list[FieldProblem] = []
    if isinstance(error, InvalidRequest):
        problems = error.problems
    elif isinstance(error, ScopeNotGrantable):
        problems = [FieldProblem("scopes", f"your role may not grant: {', '.join(error.scopes)}")]
    return error_response(status, code, str(error), problems)


def authorizer_context(app: RestResolver) -> dict[str, Any]:
    """requestContext.authorizer: what API Gateway's authorizer vouched for."""
    context = (app.current_event.get("requestContext") or {}).get("authorizer")
    return context if isinstance(context, dict) else {}


def current_caller(app: RestResolver) -> Caller:
    """The caller as the Cognito authorizer vouched for it; never the body, path or headers."""
    caller = caller_from_claims(authorizer_context(app).get("claims"))
    logger.append_keys(org_id=caller.org_id, user_id=caller.user_id)
    return caller


@cache
def get_service() -> TokenService:
    config = get_config()
    repository = TokenRepository(config.table_name, dynamodb_client(read_timeout=5.0))
    return TokenService(repository, default_catalog(config.scope_catalog_path), config, on_revoked=flusher_from_env())


class _DuplicateKey(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _DuplicateKey(duplicates[0])
    return dict(pairs)


class BodyRejected(Exception):
    """The request body is refused before routing (size, media type, JSON shape)."""

    def __init__(self, status: int, code: str, problem: FieldProblem) -> None:
        super().__init__(problem.reason)
        self.status, self.code, self.problem = status, code, problem


def request_document(event: dict[str, Any]) -> dict[str, Any] | None:
    """The body as a JSON object, or None without one; checks size, content type, and that
    no key appears twice: JSON's last-duplicate-wins would let two readers see two
    different requests."""
    body = event.get("body")
    if not body:
        return None
    if event.get("isBase64Encoded"):
        raise BodyRejected(415, "unsupported_media_type", FieldProblem("body", "must be JSON text, not base64-encoded"))
    if len(body) > MAX_BODY_CHARACTERS:
        raise BodyRejected(
            413, "payload_too_large", FieldProblem("body", f"must be at most {MAX_BODY_CHARACTERS} characters")
        )
    headers = {str(key).lower(): str(value) for key, value in (event.get("headers") or {}).items()}
    content_type = headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BodyRejected(415, "unsupported_media_type", FieldProblem("body", "Content-Type must be application/json"))
    try:
        document = json.loads(body, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as duplicate:
        raise BodyRejected(400, "invalid_request", FieldProblem(str(duplicate), "appears more than once")) from None
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is not valid JSON")) from None
    if not isinstance(document, dict):
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "must be a JSON object"))
    return document


def lambda_handler_for(app: RestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            response = app.resolve(event, request_document(event))
        except Exception as error:  # every failure has its defined answer (response_for)
            response = response_for(error)
        return response.proxy_result()

    if sdk_tracing_enabled():
        # X-Ray subsegments per AWS call; importing the X-Ray SDK costs ~100-200 ms of cold start.
        handle = get_tracer().capture_lambda_handler(capture_response=False)(handle)
    traced = metrics.log_metrics(handle)
    logged = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    return logged(traced)


def sdk_tracing_enabled() -> bool:
    """Lambda's active tracing records every invocation anyway; the SDK adds subsegments."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in {"1", "true"}
