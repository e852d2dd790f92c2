"""GET /settings and PUT /settings: the organisation's token policy (changing it: admins)."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.console_api import console_lambda_handler
from token_service.http.models import PolicyUpdate, PolicyView
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import logger
from token_service.wiring import get_service

app = RestResolver()


@app.route("GET", "/settings", summary="The organisation's token policy", response=PolicyView, errors=(403, 503))
def get_settings() -> JsonResponse:
    policy = get_service().get_policy(current_caller(app))
    return json_response(200, PolicyView.from_policy(policy))


@app.route(
    "PUT",
    "/settings",
    summary="Change the organisation's token policy (admins)",
    body=PolicyUpdate,
    response=PolicyView,
    errors={403: "Only admins may change the policy.", 409: "", 503: ""},
)
def put_settings(body: PolicyUpdate) -> JsonResponse:
    policy = get_service().update_policy(current_caller(app), body.change())
    logger.info("Token policy changed", extra={"policy": body.model_dump()})
    return json_response(200, PolicyView.from_policy(policy))


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
