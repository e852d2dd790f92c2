"""GET /v1/token and DELETE /v1/token: the calling API token's own metadata, or revoke it.

These routes sit behind the token authorizer: the token's identity comes from the
authorizer's context, never from the request.
"""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from token_service.api import authorizer_context, create_app, get_service, json_response, lambda_handler_for
from token_service.cache_flush import AuthorizerCacheFlusher, configured_stage
from token_service.errors import NotAuthenticated
from token_service.models import PresentedTokenView, TokenView
from token_service.observability import logger, metrics
from token_service.rest import JsonResponse

app = create_app()


def presented_token() -> tuple[str, str, str]:
    """(token_id, org_id, owner_id) as the token authorizer vouched for them."""
    context = authorizer_context(app)
    values = tuple(context.get(key) for key in ("token_id", "org_id", "owner_id"))
    if not all(isinstance(value, str) and value for value in values):
        raise NotAuthenticated("The request was not authorized by the token authorizer.")
    logger.append_keys(token_id=values[0], org_id=values[1])
    return values  # type: ignore[return-value]


@app.route("GET", "/v1/token", summary="The calling token's metadata", response=PresentedTokenView)
def get_presented_token() -> JsonResponse:
    token_id, org_id, _ = presented_token()
    service = get_service()
    record = service.get_presented_token(token_id, org_id)
    view = TokenView.from_record(record, service.clock())
    return json_response(200, PresentedTokenView(**view.model_dump(), org_id=record.org_id))


@app.route("DELETE", "/v1/token", summary="Revoke the calling token (for a token that has leaked)", response=TokenView)
def revoke_presented_token() -> JsonResponse:
    token_id, org_id, owner_id = presented_token()
    service = get_service()
    outcome = service.revoke_presented_token(token_id, org_id, owner_id)
    if outcome.newly_revoked:
        context = app.current_event.get("requestContext") or {}
        stage = (str(context.get("apiId", "")), str(context.get("stage", "")))
        # The stage that served this request caches the token's policy too; the service has
        # already flushed the configured one.
        if all(stage) and stage != configured_stage():
            AuthorizerCacheFlusher(*stage)([token_id])
        metrics.add_metric(name="TokensRevoked", unit=MetricUnit.Count, value=1)
        logger.info("Token revoked itself")
    return json_response(200, TokenView.from_record(outcome.record, service.clock()))


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
