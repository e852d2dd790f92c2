"""DELETE /tokens/{token_id} and POST /tokens/revoke: idempotent revocation; PATCH
/tokens/{token_id}: disable or enable a token; PUT /members/{user_id}: an admin reports a
membership change, for identity providers that send no events (token_service.domain.membership)."""

import token_service.startup  # first: pauses garbage collection while modules load

from collections import Counter
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from token_service.console_api import console_lambda_handler
from token_service.http.models import (
    BulkRevokeRequest,
    BulkRevokeView,
    MembershipUpdate,
    MembershipView,
    RevokeResultView,
    TokenIdPath,
    TokenUpdate,
    TokenView,
    UserIdPath,
)
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import logger, metrics
from token_service.wiring import get_service

app = RestResolver()


@app.route(
    "DELETE",
    "/tokens/{token_id}",
    summary="Revoke one token (idempotent)",
    path_parameters=TokenIdPath,
    response=TokenView,
    errors=(403, 404, 409, 503),
)
def revoke_token(path: TokenIdPath) -> JsonResponse:
    service = get_service()
    outcome = service.revoke_token(current_caller(app), path.token_id)
    if outcome.newly_revoked:
        metrics.add_metric(name="TokensRevoked", unit=MetricUnit.Count, value=1)
        logger.info("Token revoked", extra={"token_id": path.token_id})
    return json_response(200, TokenView.from_record(outcome.record, service.clock()))


@app.route(
    "POST",
    "/tokens/revoke",
    summary="Revoke tokens in bulk",
    body=BulkRevokeRequest,
    response=BulkRevokeView,
    errors={403: "Only admins may revoke another user's or the whole organisation's tokens.", 409: "", 503: ""},
)
def bulk_revoke(body: BulkRevokeRequest) -> JsonResponse:
    results = get_service().bulk_revoke(current_caller(app), body.selection())
    counts = Counter(result for _, result in results)
    metrics.add_metric(name="TokensRevoked", unit=MetricUnit.Count, value=counts["revoked"])
    logger.info("Bulk revoke", extra={"counts": dict(counts)})
    return json_response(
        200,
        BulkRevokeView(
            results=[RevokeResultView(token_id=token_id, result=result) for token_id, result in results],
            revoked=counts["revoked"],
            already_revoked=counts["already_revoked"],
            not_found=counts["not_found"],
        ),
    )


@app.route(
    "PATCH",
    "/tokens/{token_id}",
    summary="Disable or enable a token (idempotent)",
    path_parameters=TokenIdPath,
    body=TokenUpdate,
    response=TokenView,
    errors={403: "", 404: "", 409: "The token is revoked or expired, or a concurrent change won (retry).", 503: ""},
)
def update_token(path: TokenIdPath, body: TokenUpdate) -> JsonResponse:
    service = get_service()
    record = service.set_enabled(current_caller(app), path.token_id, body.enabled)
    logger.info("Token enabled" if body.enabled else "Token disabled", extra={"token_id": path.token_id})
    return json_response(200, TokenView.from_record(record, service.clock()))


@app.route(
    "PUT",
    "/members/{user_id}",
    summary="A user's role changed, or they left: fit their tokens to it (admins)",
    path_parameters=UserIdPath,
    body=MembershipUpdate,
    response=MembershipView,
    errors={403: "Only admins may change a membership.", 409: "", 503: ""},
)
def put_member(path: UserIdPath, body: MembershipUpdate) -> JsonResponse:
    revoked, trimmed = get_service().change_membership(current_caller(app), path.user_id, body.role)
    logger.info("Membership changed", extra={"member": path.user_id, "revoked": revoked, "trimmed": trimmed})
    return json_response(200, MembershipView(user_id=path.user_id, role=body.role, revoked=revoked, trimmed=trimmed))


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
