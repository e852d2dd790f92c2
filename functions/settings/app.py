"""GET /settings and PUT /settings: the organisation's token policy (changing it: admins)."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.api import create_app, current_caller, get_service, json_response, lambda_handler_for
from token_service.models import PolicyUpdate, PolicyView
from token_service.observability import logger
from token_service.rest import JsonResponse

app = create_app()


@app.route("GET", "/settings", summary="The organisation's token policy", response=PolicyView)
def get_settings() -> JsonResponse:
    policy = get_service().get_policy(current_caller(app))
    return json_response(200, PolicyView.from_policy(policy))


@app.route(
    "PUT",
    "/settings",
    summary="Change the organisation's token policy (admins)",
    body=PolicyUpdate,
    response=PolicyView,
)
def put_settings(body: PolicyUpdate) -> JsonResponse:
    policy = get_service().update_policy(current_caller(app), body)
    logger.info("Token policy changed", extra={"policy": body.model_dump()})
    return json_response(200, PolicyView.from_policy(policy))


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
