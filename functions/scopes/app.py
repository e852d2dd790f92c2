"""GET /scopes: the scopes the caller's role may grant; the console builds its checkboxes from it."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.config import management_config
from token_service.http.models import ScopesView, ScopeView
from token_service.http.proxy import current_caller, lambda_handler_for
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.wiring import get_service

app = RestResolver()


@app.route("GET", "/scopes", summary="Scopes you may grant", response=ScopesView, errors=(403,))
def list_scopes() -> JsonResponse:
    caller = current_caller(app)
    scopes = get_service().grantable_scopes(caller)
    view = ScopesView(role=caller.role, scopes=[ScopeView(name=name, description=text) for name, text in scopes])
    return json_response(200, view)


# Start-up goes on through the first event, which creates the AWS clients and builds the validators.
lambda_handler: Any = token_service.startup.through_first_event(
    # Only ID tokens of the console's app clients (CONSOLE_CLIENT_IDS) are accepted; every answer
    # allows the console's origin (CONSOLE_ORIGIN, CORS).
    lambda_handler_for(
        app,
        management_config().sdk_tracing,
        management_config().console_clients(),
        cors_origin=management_config().console_origin,
    )
)

token_service.startup.finished()
