"""The scope catalog and the route map are data that an operator can replace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from token_service.domain.routes import RouteMapError, find_route, load_route_map, parse_route_map
from token_service.domain.scopes import CatalogError, ScopeCatalog, load_catalog


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"scopes": {}, "roles": {}}, "non-empty"),
        ({"scopes": {"a:b": "x"}, "roles": {"r": {"scopes": ["c:d"]}}}, "unknown scopes: c:d"),
        ({"scopes": {"a:b": "x"}, "roles": {"r": {"scopes": "a:b"}}}, "list of scope names"),
    ],
)
def test_an_inconsistent_catalog_fails_at_load_not_per_request(document: dict, problem: str) -> None:
    with pytest.raises(CatalogError, match=problem):
        ScopeCatalog.from_document(document)


def test_the_default_catalog_grants_only_known_scopes_and_has_one_admin_role() -> None:
    catalog = load_catalog()
    assert all(not catalog.unknown_scopes(list(role.grantable_scopes)) for role in catalog.roles.values())
    assert [name for name, role in catalog.roles.items() if role.organisation_admin] == ["admin"]


def test_every_route_of_the_default_map_needs_only_scopes_that_exist() -> None:
    catalog = load_catalog()
    for route in load_route_map():
        assert not catalog.unknown_scopes(sorted(route.required_scopes)), route


def test_an_operator_route_map_replaces_the_default(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"routes": {"GET /billing/{invoice}": ["billing:read"]}}))
    routes = load_route_map(str(path))
    assert find_route(routes, "GET", "/billing/inv-1") is not None
    assert find_route(routes, "GET", "/v1/reports") is None  # not in this map: denied


@pytest.mark.parametrize(
    "routes",
    [{}, {"FETCH /x": []}, {"GET x": []}, {"GET /x": "reports:read"}, {"GET /a b": []}],
)
def test_a_malformed_route_map_fails_at_load(routes: dict) -> None:
    with pytest.raises(RouteMapError):
        parse_route_map({"routes": routes})
