"""GET /audit and GET /audit/verify: the organisation's audit log and its hash chain (admins)."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.console_api import console_lambda_handler
from token_service.http.audit_models import AuditListQuery, AuditPageView, AuditRecordView, ChainCheckView
from token_service.http.pagination import decode_cursor, encode_cursor
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.observability import logger
from token_service.wiring import get_service

app = RestResolver()


@app.route(
    "GET",
    "/audit",
    summary="The organisation's audit log, newest first (admins)",
    query=AuditListQuery,
    response=AuditPageView,
    errors={403: "Only admins may read the audit log.", 503: ""},
)
def list_audit(query: AuditListQuery) -> JsonResponse:
    caller = current_caller(app)
    records, next_key = get_service().audit_records(caller, query.query(caller.org_id, decode_cursor(query.next)))
    items = [AuditRecordView.from_record(record) for record in records]
    return json_response(200, AuditPageView(items=items, next=encode_cursor(next_key)))


@app.route(
    "GET",
    "/audit/verify",
    summary="Check the organisation's audit chain: intact, or its first broken link (admins)",
    response=ChainCheckView,
    errors={403: "Only admins may verify the audit log.", 503: ""},
)
def verify_audit() -> JsonResponse:
    check = get_service().verify_audit(current_caller(app))
    if not check.intact:
        logger.warning("Audit chain broken", extra={"broken_at": check.broken_at, "reason": check.reason})
    return json_response(200, ChainCheckView.from_check(check))


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
