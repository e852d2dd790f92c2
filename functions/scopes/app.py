"""GET /scopes: the scopes the caller's role may grant; the console builds its checkboxes from it."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from aws_lambda_powertools.event_handler import Response

from token_service.api import create_app, current_caller, get_service, json_response, lambda_handler_for
from token_service.models import ScopesView, ScopeView

app = create_app()


@app.get("/scopes", summary="Scopes you may grant")
def list_scopes() -> Response[ScopesView]:
    caller = current_caller(app)
    scopes = get_service().grantable_scopes(caller)
    view = ScopesView(role=caller.role, scopes=[ScopeView(name=name, description=text) for name, text in scopes])
    return json_response(200, view)


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
