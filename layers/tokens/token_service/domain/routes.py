"""The protected API's routes and the scopes each needs: data, loaded once, deny by default."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_SEGMENT = re.compile(r"[A-Za-z0-9._~\-]+|\{[A-Za-z0-9_]+\+?\}")


class RouteMapError(ValueError):
    """The route map is malformed; raised at init so a bad deploy fails loudly, never open."""


@dataclass(frozen=True, slots=True)
class ProtectedRoute:
    method: str
    resource: str  # /v1/reports/{report_id}
    required_scopes: frozenset[str]
    pattern: re.Pattern[str]

    def allows(self, scopes: frozenset[str]) -> bool:
        return self.required_scopes <= scopes

    @property
    def has_parameters(self) -> bool:
        return "{" in self.resource


def _compile(resource: str) -> re.Pattern[str]:
    regex = ""
    for segment in resource.strip("/").split("/"):
        if segment.endswith("+}"):
            regex += "/.+"
        elif segment.startswith("{"):
            regex += "/[^/]+"
        else:
            regex += "/" + re.escape(segment)
    return re.compile(regex or "/")


def parse_route_map(document: dict[str, object]) -> tuple[ProtectedRoute, ...]:
    routes = document.get("routes")
    if not isinstance(routes, dict) or not routes:
        raise RouteMapError("the route map needs a non-empty 'routes' object")
    parsed = []
    for key, scopes in routes.items():
        method, _, resource = str(key).partition(" ")
        segments = resource.strip("/").split("/")
        if method not in _METHODS or not resource.startswith("/") or not all(_SEGMENT.fullmatch(s) for s in segments):
            raise RouteMapError(f"route {key!r} must look like 'GET /v1/reports/{{report_id}}'")
        if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
            raise RouteMapError(f"route {key!r}: scopes must be a list of scope names")
        parsed.append(ProtectedRoute(method, resource, frozenset(scopes), _compile(resource)))
    # Literal segments win over parameters, as in API Gateway: /v1/reports/latest before /v1/reports/{id}.
    return tuple(sorted(parsed, key=lambda route: (route.resource.count("{"), -route.resource.count("/"))))


def load_route_map(path: str | None = None) -> tuple[ProtectedRoute, ...]:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("token_service.domain").joinpath("route_scopes.json").read_text(encoding="utf-8")
    return parse_route_map(json.loads(text))


def find_route(routes: tuple[ProtectedRoute, ...], method: str, path: str) -> ProtectedRoute | None:
    """Matches a concrete request path (or an API Gateway resource template) to a route."""
    for route in routes:
        if route.method == method.upper() and (route.resource == path or route.pattern.fullmatch(path)):
            return route
    return None
