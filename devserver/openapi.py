"""The management API's OpenAPI document, generated from the handlers' own models."""

from __future__ import annotations

from typing import Any

from devserver.gateway import load_handler_module
from devserver.template import api_routes, rest_apis

TITLE = "API token service"
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
                    },
                },
            },
        }
    },
}
ERROR_RESPONSES = {
    "400": "The request is not valid: the body names each field and the reason.",
    "401": "No valid identity (console) or token (API).",
    "403": "Your role, or the token's scopes, do not allow this.",
    "404": "No such token, or not yours.",
    "409": "Over the active-token cap, or a concurrent change; see the message.",
    "413": "The request body is too large.",
    "415": "The request body is not application/json.",
    "503": "Temporarily unavailable; retry after Retry-After seconds.",
}
SECURITY_SCHEMES = {
    "consoleUser": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A Cognito ID token (the local dev server takes X-Dev-* headers instead).",
    },
    "apiToken": {"type": "http", "scheme": "bearer", "description": "An API token: lgk_..."},
}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """Merges the OpenAPI schemas of every function's resolver into one document."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "1.0.0"},
        "paths": {},
        "components": {"schemas": {"Error": ERROR_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    apis = rest_apis()
    seen: set[str] = set()
    for route in api_routes():
        if route.code_dir.name in seen:
            continue
        seen.add(route.code_dir.name)
        module = load_handler_module(route.code_dir, route.handler)
        paths, schemas = module.app.openapi_paths()
        security = [{"apiToken": []}] if apis[route.api].authorizer else [{"consoleUser": []}]
        for path, operations in paths.items():
            for operation in operations.values():
                operation["security"] = security
                _document_errors(operation)
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(schemas)
    return document


def _document_errors(operation: dict[str, Any]) -> None:
    """The error answers every operation may give, all with the one error body."""
    responses = operation.setdefault("responses", {})
    for status, description in ERROR_RESPONSES.items():
        responses.setdefault(
            status,
            {
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
