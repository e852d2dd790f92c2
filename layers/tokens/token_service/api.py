"""What every management handler shares: the resolver, identity, and one error table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestValidationError,
    ResponseValidationError,
)
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
) -> Response[Any]:
    body = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    # Token metadata is private to its owner: no shared cache may keep any of it.
    return Response(
        status_code=status,
        content_type="application/json",
        body=body,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def error_response(status: int, code: str, message: str, problems: Sequence[FieldProblem] = ()) -> Response[Any]:
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


def create_app() -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)

    @app.exception_handler(RequestValidationError)
    def _invalid_request(error: RequestValidationError) -> Response[Any]:
        return error_response(
            400, "invalid_request", "The request is not valid.", problems_from_validation(error.errors())
        )

    @app.exception_handler(ResponseValidationError)
    def _invalid_response(error: ResponseValidationError) -> Response[Any]:
        logger.error("Response failed its own schema", extra={"errors": str(error.errors())[:2000]})
        return error_response(500, "internal_error", "The service failed to process the request.")

    @app.exception_handler(DomainError)
    def _domain_error(error: DomainError) -> Response[Any]:
        status, code = next(ERROR_RESPONSES[kind] for kind in type(error).__mro__ if kind in ERROR_RESPONSES)
        if status >= 500:
            logger.exception("Storage failure", extra={"error_type": type(error.__cause__).__name__})
        problems: list[FieldProblem] = []
        if isinstance(error, InvalidRequest):
            problems = error.problems
        elif isinstance(error, ScopeNotGrantable):
            problems = [FieldProblem("scopes", f"your role may not grant: {', '.join(error.scopes)}")]
        return error_response(status, code, str(error), problems)

    @app.not_found
    def _unknown_route(_: NotFoundError) -> Response[Any]:
        return error_response(404, "not_found", "No such route.")

    @app.exception_handler(Exception)
    def _unexpected(_: Exception) -> Response[Any]:
        logger.exception("Unhandled error")
        return error_response(500, "internal_error", "The service failed to process the request.")

    return app


def current_caller(app: APIGatewayRestResolver) -> Caller:
    """The caller as the Cognito authorizer vouched for it; never the body, path or headers."""
    caller = caller_from_claims(app.current_event.request_context.authorizer.claims)
    logger.append_keys(org_id=caller.org_id, user_id=caller.user_id)
    return caller


@cache
def get_service() -> TokenService:
    config = get_config()
    repository = TokenRepository(config.table_name, dynamodb_client(read_timeout=5.0))
    return TokenService(repository, default_catalog(config.scope_catalog_path), config, on_revoked=flusher_from_env())


def lambda_handler_for(
    app: APIGatewayRestResolver,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    @get_tracer().capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return app.resolve(event, context)

    return lambda_handler  # type: ignore[no-any-return]
