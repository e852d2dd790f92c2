"""GET /tokens and GET /tokens/{token_id}: token metadata, never secrets or hashes."""

import token_service.startup  # first: pauses garbage collection while modules load

from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from token_service.api import create_app, current_caller, get_service, json_response, lambda_handler_for
from token_service.models import TokenPageView, TokenView

MAX_PAGE_SIZE = 100

app = create_app()


@app.get("/tokens", summary="List tokens, newest first")
def list_tokens(
    limit: Annotated[int, Query(ge=1, description=f"Page size; values above {MAX_PAGE_SIZE} are capped.")] = 20,
    next: Annotated[str | None, Query(max_length=1024, description="Cursor from the previous page.")] = None,
    status: Annotated[Literal["active", "expired", "revoked"] | None, Query()] = None,
    owner_id: Annotated[str | None, Query(max_length=128, description="Another user's tokens (admins).")] = None,
    all_users: Annotated[bool, Query(description="The whole organisation's tokens (admins).")] = False,
) -> Response[TokenPageView]:
    service = get_service()
    listing = service.list_tokens(
        current_caller(app),
        limit=min(limit, MAX_PAGE_SIZE),
        cursor=next,
        status=status,
        owner_id=owner_id,
        all_users=all_users,
    )
    now = service.clock()
    items = [TokenView.from_record(record, now) for record in listing.records]
    return json_response(200, TokenPageView(items=items, next=listing.next_cursor))


@app.get("/tokens/<token_id>", summary="Get one token's metadata")
def get_token(token_id: Annotated[str, Path(max_length=64)]) -> Response[TokenView]:
    service = get_service()
    record = service.get_token(current_caller(app), token_id)
    return json_response(200, TokenView.from_record(record, service.clock()))


lambda_handler: Any = lambda_handler_for(app)

token_service.startup.finished()
