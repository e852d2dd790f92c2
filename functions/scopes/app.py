"""GET /scopes: the scopes the caller's role may grant; the console builds its checkboxes from it."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.config import management_config
from token_service.console_api import console_lambda_handler
from token_service.domain.scopes import default_catalog
from token_service.http.models import ScopesView, ScopeView
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver

app = RestResolver()


@app.route("GET", "/scopes", summary="Scopes you may grant", response=ScopesView, errors=(403,))
def list_scopes() -> JsonResponse:
    caller = current_caller(app)
    # The catalog is all it needs: no AWS client, nor even the SDK, in this function.
    scopes = default_catalog(management_config().scope_catalog_path).grantable(caller.role)
    view = ScopesView(role=caller.role, scopes=[ScopeView(name=name, description=text) for name, text in scopes])
    return json_response(200, view)


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
