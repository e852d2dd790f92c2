"""The scope catalog: which scopes exist and which roles may grant them. Data, not code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from token_service.domain.errors import PermissionDenied


class CatalogError(ValueError):
    """The catalog file is inconsistent; raised at load time so a bad deploy fails fast."""


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    organisation_admin: bool
    grantable_scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScopeCatalog:
    descriptions: dict[str, str]
    roles: dict[str, Role]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> ScopeCatalog:
        descriptions = document.get("scopes")
        roles = document.get("roles")
        if not isinstance(descriptions, dict) or not descriptions or not isinstance(roles, dict) or not roles:
            raise CatalogError("the catalog needs non-empty 'scopes' and 'roles' objects")
        parsed: dict[str, Role] = {}
        for name, spec in roles.items():
            scopes = spec.get("scopes", []) if isinstance(spec, dict) else None
            if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
                raise CatalogError(f"role {name!r}: 'scopes' must be a list of scope names")
            unknown = sorted(set(scopes) - descriptions.keys())
            if unknown:
                raise CatalogError(f"role {name!r} grants unknown scopes: {', '.join(unknown)}")
            admin = spec.get("organisation_admin", False)
            parsed[name] = Role(name=name, organisation_admin=admin is True, grantable_scopes=tuple(scopes))
        return cls(descriptions={str(k): str(v) for k, v in descriptions.items()}, roles=parsed)

    def role(self, name: str) -> Role:
        role = self.roles.get(name)
        if role is None:
            raise PermissionDenied("Your role has no access to API tokens.")
        return role

    def unknown_scopes(self, scopes: list[str]) -> list[str]:
        return [scope for scope in scopes if scope not in self.descriptions]

    def grantable(self, role_name: str) -> list[tuple[str, str]]:
        """The scopes the role may grant, with their descriptions (403 for a role with no access)."""
        return [(scope, self.descriptions[scope]) for scope in self.role(role_name).grantable_scopes]


def load_catalog(path: str | None = None) -> ScopeCatalog:
    if path:
        text = Path(path).read_text(encoding="utf-8")
    else:
        text = resources.files("token_service.domain").joinpath("scope_catalog.json").read_text(encoding="utf-8")
    return ScopeCatalog.from_document(json.loads(text))


@cache
def default_catalog(path: str | None = None) -> ScopeCatalog:
    return load_catalog(path)
