"""API Gateway Lambda authorizer: `Authorization: Bearer <token>` -> allow, 401 or 403.

Answers REST API TOKEN and REQUEST events (IAM policy) and HTTP API payload 2.0 events
(simple response). Its imports stay lean: it runs on every request's path.
"""

from __future__ import annotations

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.config import authorizer_config
from token_service.domain.authorizer import Decision, Reason, TokenAuthorizer
from token_service.domain.routes import load_route_map
from token_service.http.authorizer_events import decision_fields, parse_event, respond
from token_service.observability import DecisionLog
from token_service.storage.aws import dynamodb_client
from token_service.storage.repository import TokenRepository

config = authorizer_config()
# Short timeouts and few attempts keep the worst case well inside API Gateway's limit.
client = dynamodb_client(config.dynamodb_endpoint, connect_timeout=0.5, read_timeout=1.0, attempts=3)
authorizer = TokenAuthorizer(
    TokenRepository(config.table_name, client),
    load_route_map(config.route_map_path),
    config.token_prefix,
    cache_seconds=config.cache_seconds,
)
decision_log = DecisionLog(config.service_name, config.metrics_namespace)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = parse_event(event)
    failure = None
    try:
        decision = authorizer.decide(request.header, request.method, request.path, request.source_ip)
    except Exception as error:  # fail closed on anything unforeseen
        failure = f"{type(error).__name__} in the authorizer"
        decision = Decision(Reason.UNAVAILABLE)
    fields = decision_fields(decision, request, getattr(context, "aws_request_id", None), failure)
    metric = "Allowed" if decision.allowed else "Denied"
    decision_log.record(metric, {"reason": decision.reason.value}, fields, "ERROR" if failure else "INFO")
    return respond(decision, request)


token_service.startup.finished()
