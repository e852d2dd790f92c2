"""The console API's functions (create, list, revoke, scopes, settings, audit): their Lambda handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from token_service.config import management_config
from token_service.http.proxy import lambda_handler_for
from token_service.http.rest import RestResolver


def console_lambda_handler(app: RestResolver) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """Only ID tokens of the console's app clients (CONSOLE_CLIENT_IDS) are accepted, and every
    answer allows the console's origin (CONSOLE_ORIGIN, CORS). Start-up goes on through the
    first event, which creates the AWS clients and builds the validators."""
    # Imported here, not above: importing the module pauses collection, which only a function's
    # start-up may do (its app module imports it first).
    from token_service.startup import through_first_event

    config = management_config()
    handler = lambda_handler_for(app, config.sdk_tracing, config.console_clients(), cors_origin=config.console_origin)
    return through_first_event(handler)
