"""Fixtures of the unit tier. No moto, no server: a unit test that asks for one fails at collection."""

from __future__ import annotations

import pytest
from support import ItemBody, ItemPath, ItemQuery, ItemView

from token_service.domain.token_format import (
    ParsedToken,
    generate_token,
)
from token_service.http.rest import JsonResponse, RestResolver

BACKEND_FIXTURES = frozenset({"dynamodb", "dynalite_endpoint", "server", "clock", "admin", "member"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = BACKEND_FIXTURES & set(getattr(item, "fixturenames", ()))
        if used and "/tests/unit/" in str(item.path):
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(used)}: move it to tests/handlers")


@pytest.fixture(scope="module")
def many_tokens() -> list[ParsedToken]:
    return [generate_token("lgk") for _ in range(10_000)]


@pytest.fixture
def app() -> RestResolver:
    app = RestResolver()

    @app.route("GET", "/items", summary="List", query=ItemQuery, response=ItemView)
    def list_items(query: ItemQuery) -> JsonResponse:
        return JsonResponse(200, {"limit": query.limit, "deleted": query.deleted})

    @app.route("PUT", "/items/{item_id}", summary="Put", path_parameters=ItemPath, body=ItemBody, response=ItemView)
    def put_item(path: ItemPath, body: ItemBody) -> JsonResponse:
        return JsonResponse(200, {"item_id": path.item_id, "name": body.name}, {"Cache-Control": "no-store"})

    return app
