"""GET /v1/token, DELETE /v1/token and POST /v1/token/rotate: the calling API token's own
metadata, revoke it, or replace it (pipelines rotating their own credential).

These routes sit behind the token authorizer: the token's identity comes from the
authorizer's context, never from the request.
"""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from token_service.config import management_config
from token_service.http.models import PresentedTokenView, RotatedTokenView, RotateTokenRequest, TokenView
from token_service.http.proxy import lambda_handler_for, presented_token, serving_stage, source_ip
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import logger, metrics
from token_service.wiring import get_service

app = RestResolver()


@app.route("GET", "/v1/token", summary="The calling token's metadata", response=PresentedTokenView, errors=(404, 503))
def get_presented_token() -> JsonResponse:
    token = presented_token(app)
    service = get_service()
    record = service.get_presented_token(token.token_id, token.org_id)
    view = TokenView.from_record(record, service.clock())
    return json_response(200, PresentedTokenView(**view.model_dump(), org_id=record.org_id))


@app.route(
    "DELETE",
    "/v1/token",
    summary="Revoke the calling token (for a token that has leaked)",
    response=TokenView,
    errors=(404, 409, 503),
)
def revoke_presented_token() -> JsonResponse:
    token = presented_token(app)
    service = get_service()
    outcome = service.revoke_presented_token(
        token.token_id, token.org_id, token.owner_id, serving_stage(app), source_ip(app)
    )
    if outcome.newly_revoked:
        metrics.add_metric(name="TokensRevoked", unit=MetricUnit.Count, value=1)
        logger.info("Token revoked itself")
    return json_response(200, TokenView.from_record(outcome.record, service.clock()))


@app.route(
    "POST",
    "/v1/token/rotate",
    summary="Rotate the calling token: a new secret, the old one kept for a grace period",
    body=RotateTokenRequest,
    response=RotatedTokenView,
    status=201,
    description="Token rotated",
    errors={
        404: "",
        409: "Already rotated (the answer names its successor), not active, or the owner is at the token cap.",
        503: "",
    },
)
def rotate_presented_token(body: RotateTokenRequest) -> JsonResponse:
    token = presented_token(app)
    service = get_service()
    rotated = service.rotate_presented_token(
        token.token_id, token.org_id, token.owner_id, body.rotation(), serving_stage(app), source_ip(app)
    )
    metrics.add_metric(name="TokensRotated", unit=MetricUnit.Count, value=1)
    logger.info("Token rotated itself", extra={"successor_id": rotated.created.record.token_id})
    return json_response(201, RotatedTokenView.from_rotation(rotated, service.clock()))


# Start-up goes on through the first event, which creates the AWS clients and builds the validators.
lambda_handler: Any = token_service.startup.through_first_event(
    lambda_handler_for(app, management_config().sdk_tracing)
)

token_service.startup.finished()
