"""POST /tokens: mint a token. The secret is in this response and nowhere else."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit

from token_service.api import create_app, current_caller, get_service, json_response, lambda_handler_for
from token_service.models import CreatedTokenView, CreateTokenRequest, TokenView
from token_service.observability import logger, metrics

app = create_app()


@app.post("/tokens", summary="Create an API token", responses={201: {"description": "Token created"}})
def create_token(request: Annotated[CreateTokenRequest, Body()]) -> Response[CreatedTokenView]:
    service = get_service()
    created = service.create_token(current_caller(app), request)
    metrics.add_metric(name="TokensCreated", unit=MetricUnit.Count, value=1)
    logger.info("Token created", extra={"token_id": created.record.token_id, "scopes": list(created.record.scopes)})
    view = TokenView.from_record(created.record, service.clock())
    return json_response(201, CreatedTokenView(**view.model_dump(), token=created.secret))


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
