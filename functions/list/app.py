"""GET /tokens and GET /tokens/{token_id}: token metadata, never secrets or hashes."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Any

from token_service.console_api import console_lambda_handler
from token_service.http.models import MAX_PAGE_SIZE, TokenIdPath, TokenListQuery, TokenPageView, TokenView
from token_service.http.pagination import decode_cursor, encode_cursor
from token_service.http.proxy import current_caller
from token_service.http.responses import json_response
from token_service.http.rest import JsonResponse, RestResolver
from token_service.wiring import get_service

app = RestResolver()


@app.route(
    "GET",
    "/tokens",
    summary="List tokens, newest first",
    query=TokenListQuery,
    response=TokenPageView,
    errors={403: "Only admins may list another user's or the whole organisation's tokens.", 503: ""},
)
def list_tokens(query: TokenListQuery) -> JsonResponse:
    service = get_service()
    page = service.list_tokens(
        current_caller(app),
        limit=min(query.limit, MAX_PAGE_SIZE),
        start_key=decode_cursor(query.next),
        status=query.status,
        owner_id=query.owner_id,
        all_users=query.all_users,
    )
    now = service.clock()
    items = [TokenView.from_record(record, now) for record in page.records]
    return json_response(200, TokenPageView(items=items, next=encode_cursor(page.next_key)))


@app.route(
    "GET",
    "/tokens/{token_id}",
    summary="Get one token's metadata",
    path_parameters=TokenIdPath,
    response=TokenView,
    errors=(403, 404, 503),
)
def get_token(path: TokenIdPath) -> JsonResponse:
    service = get_service()
    record = service.get_token(current_caller(app), path.token_id)
    return json_response(200, TokenView.from_record(record, service.clock()))


lambda_handler: Any = console_lambda_handler(app)

token_service.startup.finished()
