"""API Gateway REST proxy events in and out: the body, the identity the authorizer vouched
for, and the Lambda handler around a resolver."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any, NamedTuple

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from token_service.domain.commands import ApiStage
from token_service.domain.errors import FieldProblem, NotAuthenticated
from token_service.domain.identity import Caller
from token_service.http.identity import caller_from_claims, check_console_token
from token_service.http.responses import BodyRejected, cors_headers, response_for
from token_service.http.rest import RestResolver
from token_service.observability import get_tracer, logger, metrics

MAX_BODY_CHARACTERS = 64 * 1024  # the largest valid request is a few kilobytes
MAX_JSON_DEPTH = 32  # valid requests nest two levels; Python's parser limit differs by version


class _DuplicateKey(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise _DuplicateKey(duplicates[0])
    return dict(pairs)


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
    except RecursionError:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is nested too deeply")) from None
    except ValueError:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is not valid JSON")) from None
    if _depth(document) > MAX_JSON_DEPTH:
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "is nested too deeply"))
    if not isinstance(document, dict):
        raise BodyRejected(400, "invalid_request", FieldProblem("body", "must be a JSON object"))
    return document


def _depth(document: Any) -> int:
    """How deeply a parsed JSON document nests, without recursion."""
    deepest, pending = 0, [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


def authorizer_context(app: RestResolver) -> dict[str, Any]:
    """requestContext.authorizer: what API Gateway's authorizer vouched for."""
    context = (app.current_event.get("requestContext") or {}).get("authorizer")
    return context if isinstance(context, dict) else {}


def current_caller(app: RestResolver) -> Caller:
    """The caller as the Cognito authorizer vouched for it; never the body, path or headers."""
    caller = caller_from_claims(authorizer_context(app).get("claims"))
    logger.append_keys(org_id=caller.org_id, user_id=caller.user_id)
    return replace(caller, source_ip=source_ip(app))


def source_ip(app: RestResolver) -> str | None:
    """The client's address as API Gateway saw it (never a header the client sets)."""
    identity = (app.current_event.get("requestContext") or {}).get("identity") or {}
    address = identity.get("sourceIp") if isinstance(identity, dict) else None
    return address[:64] if isinstance(address, str) and address else None


# The API token of a self-service request, as the token authorizer vouched for it.
PresentedToken = NamedTuple("PresentedToken", [("token_id", str), ("org_id", str), ("owner_id", str)])  # noqa: UP014


def presented_token(app: RestResolver) -> PresentedToken:
    context = authorizer_context(app)
    values = [context.get(key) for key in ("token_id", "org_id", "owner_id")]
    if not all(isinstance(value, str) and value for value in values):
        raise NotAuthenticated("The request was not authorized by the token authorizer.")
    token = PresentedToken(*(str(value) for value in values))
    logger.append_keys(token_id=token.token_id, org_id=token.org_id)
    return token


def serving_stage(app: RestResolver) -> ApiStage | None:
    """The API stage that served this request (its authorizer cache holds the token's policy)."""
    context = app.current_event.get("requestContext") or {}
    api_id, stage = str(context.get("apiId") or ""), str(context.get("stage") or "")
    kind = "apis" if "routeKey" in context else "restapis"  # an HTTP API's payload names its route key
    return ApiStage(kind, api_id, stage) if api_id and stage else None


def lambda_handler_for(
    app: RestResolver,
    sdk_tracing: bool,
    console_clients: Collection[str] | None = None,
    *,
    cors_origin: str | None = None,
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The function's Lambda handler. `console_clients`: the app clients whose ID tokens the
    console API's functions accept (CONSOLE_CLIENT_IDS), checked before anything else; None
    for functions that serve no console route. `cors_origin`: the console's origin
    (CONSOLE_ORIGIN), which every answer then allows (CORS); None: no CORS headers."""
    allowed_origin = cors_headers(cors_origin)

    def handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            if console_clients is not None:
                authorizer = (event.get("requestContext") or {}).get("authorizer")
                check_console_token(authorizer.get("claims") if isinstance(authorizer, dict) else None, console_clients)
            response = app.resolve(event, request_document(event))
        except Exception as error:  # every failure has its defined answer (response_for)
            response = response_for(error)
        result = response.proxy_result()
        result["headers"].update(allowed_origin)
        return result

    if sdk_tracing:
        # X-Ray subsegments per AWS call; importing the X-Ray SDK costs ~100-200 ms of cold start.
        # Lambda's active tracing records every invocation without it.
        handle = get_tracer().capture_lambda_handler(capture_response=False)(handle)
    traced = metrics.log_metrics(handle)
    logged = logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
    return logged(traced)
