"""GET /settings and PUT /settings: the organisation's token policy (changing it: admins)."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from token_service.api import create_app, current_caller, get_service, json_response, lambda_handler_for
from token_service.models import PolicyUpdate, PolicyView
from token_service.observability import logger

app = create_app()


@app.get("/settings", summary="The organisation's token policy")
def get_settings() -> Response[PolicyView]:
    policy = get_service().get_policy(current_caller(app))
    return json_response(200, PolicyView.from_policy(policy))


@app.put("/settings", summary="Change the organisation's token policy (admins)")
def put_settings(update: Annotated[PolicyUpdate, Body()]) -> Response[PolicyView]:
    policy = get_service().update_policy(current_caller(app), update)
    logger.info("Token policy changed", extra={"policy": update.model_dump()})
    return json_response(200, PolicyView.from_policy(policy))


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
