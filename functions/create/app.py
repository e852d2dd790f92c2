"""POST /tokens and POST /tokens/{token_id}/rotate: mint a token, or one that replaces another.
The secret is in this response and nowhere else."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from token_service.console_api import console_lambda_handler
from token_service.http.models import (
    CreatedTokenView,
    CreateTokenRequest,
    RotatedTokenView,
    RotateTokenRequest,
    TokenIdPath,
    TokenView,
)
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import logger, metrics
from token_service.wiring import get_service

app = RestResolver()


@app.route(
    "POST",
    "/tokens",
    summary="Create an API token",
    body=CreateTokenRequest,
    response=CreatedTokenView,
    status=201,
    description="Token created",
    errors={
        403: "Your role may not create tokens, or may not grant a scope (the answer names it).",
        409: "You hold the organisation's maximum of active tokens, or a concurrent change won (retry).",
        503: "",
    },
)
def create_token(body: CreateTokenRequest) -> JsonResponse:
    service = get_service()
    created = service.create_token(current_caller(app), body.command())
    metrics.add_metric(name="TokensCreated", unit=MetricUnit.Count, value=1)
    logger.info("Token created", extra={"token_id": created.record.token_id, "scopes": list(created.record.scopes)})
    view = TokenView.from_record(created.record, service.clock())
    return json_response(201, CreatedTokenView(**view.model_dump(), token=created.secret))


@app.route(
    "POST",
    "/tokens/{token_id}/rotate",
    summary="Rotate a token: a new secret, the old one kept for a grace period",
    path_parameters=TokenIdPath,
    body=RotateTokenRequest,
    response=RotatedTokenView,
    status=201,
    description="Token rotated",
    errors={
        403: "",
        404: "",
        409: "Already rotated (the answer names its successor), not active, or the owner is at the token cap.",
        503: "",
    },
)
def rotate_token(path: TokenIdPath, body: RotateTokenRequest) -> JsonResponse:
    service = get_service()
    rotated = service.rotate_token(current_caller(app), path.token_id, body.rotation())
    metrics.add_metric(name="TokensRotated", unit=MetricUnit.Count, value=1)
    logger.info("Token rotated", extra={"token_id": path.token_id, "successor_id": rotated.created.record.token_id})
    return json_response(201, RotatedTokenView.from_rotation(rotated, service.clock()))


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
