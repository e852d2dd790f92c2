"""token_service.http.rest: the management functions' resolver, on its own."""

from __future__ import annotations

from typing import Any

import pytest

from token_service.http.rest import RequestInvalid, RestResolver, RouteNotFound


def event(method: str, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    return {"httpMethod": method, "path": path, "queryStringParameters": query}


def test_routes_by_method_and_path_and_passes_validated_models(app: RestResolver) -> None:
    listed = app.resolve(event("GET", "/items", {"limit": "5", "deleted": "true", "unknown": "x"}), None)
    assert (listed.status, listed.body) == (200, {"limit": 5, "deleted": True})
    put = app.resolve(event("PUT", "/items/abc"), {"name": "n"})
    assert put.proxy_result() == {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": '{"item_id":"abc","name":"n"}',
        "isBase64Encoded": False,
    }
    assert app.current_event["path"] == "/items/abc"


def test_a_trailing_slash_reaches_the_route_as_in_api_gateway(app: RestResolver) -> None:
    assert app.resolve(event("GET", "/items/"), None).status == 200
    assert app.resolve(event("PUT", "/items/abc/"), {"name": "n"}).body == {"item_id": "abc", "name": "n"}


def test_a_repeated_query_parameter_is_refused(app: RestResolver) -> None:
    request = event("GET", "/items", {"limit": "5"})
    request["multiValueQueryStringParameters"] = {"limit": ["2", "5"], "unknown": ["a", "b"]}
    with pytest.raises(RequestInvalid) as invalid:
        app.resolve(request, None)
    assert [(error["loc"], error["msg"]) for error in invalid.value.errors] == [
        (("query", "limit"), "appears more than once")
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/items"), ("GET", "/items/x"), ("PUT", "/items/a/b"), ("PUT", "/items/"), ("GET", "/other"), ("", "")],
)
def test_anything_else_is_no_route(app: RestResolver, method: str, path: str) -> None:
    with pytest.raises(RouteNotFound):
        app.resolve(event(method, path), {"name": "n"})


def test_errors_are_located_and_all_reported_at_once(app: RestResolver) -> None:
    with pytest.raises(RequestInvalid) as invalid:
        app.resolve(event("PUT", "/items/123456789"), {"name": 5})
    assert {(error["loc"], error["type"]) for error in invalid.value.errors} == {
        (("path", "item_id"), "string_too_long"),
        (("body", "name"), "string_type"),
    }
    with pytest.raises(RequestInvalid) as missing:
        app.resolve(event("PUT", "/items/a"), None)
    assert [(error["loc"], error["type"]) for error in missing.value.errors] == [(("body",), "missing")]
    with pytest.raises(RequestInvalid) as query:
        app.resolve(event("GET", "/items", {"limit": "0"}), None)
    assert [error["loc"] for error in query.value.errors] == [("query", "limit")]


def test_openapi_describes_each_route_from_its_models(app: RestResolver) -> None:
    paths, schemas = app.openapi_paths()
    listing = paths["/items"]["get"]
    assert listing["operationId"] == "list_items_items_get"
    assert [(p["name"], p["in"], p["required"]) for p in listing["parameters"]] == [
        ("limit", "query", False),
        ("deleted", "query", False),
    ]
    assert listing["parameters"][0]["description"] == "Page size."
    put = paths["/items/{item_id}"]["put"]
    assert put["parameters"][0]["name"] == "item_id" and put["parameters"][0]["required"]
    assert put["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemBody"}
    assert put["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ItemView"}
    assert {"ItemBody", "ItemView"} <= set(schemas)
