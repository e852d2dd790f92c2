"""The management API's OpenAPI document, generated from the handlers' own models.

What validates a request is what the document states (token_service.http.models): lengths,
item counts, patterns, formats, one-of selectors, and the loaded scope catalog's scopes and
roles as enums. Each operation lists the error statuses it may answer (its handler's, then
API Gateway's and the authorizers' in front of it), the security scheme the deployed API
uses, and OpenAPI links from the responses that carry a token's or a user's id to the
operations that take it.
"""

from __future__ import annotations

from typing import Any

from devserver.gateway import load_handler_module
from devserver.template import api_routes, rest_apis
from token_service.config import authorizer_config, management_config
from token_service.domain.routes import load_route_map
from token_service.domain.scopes import default_catalog
from token_service.http.rest import ERROR_DESCRIPTIONS, error_response

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
SECURITY_SCHEMES = {
    # As API Gateway exports a Cognito user pool authorizer: the ID token is the Authorization
    # header's whole value (no "Bearer" before it).
    "consoleUser": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "x-amazon-apigateway-authtype": "cognito_user_pools",
        "description": (
            "The console API's Cognito user pool authorizer: `Authorization: <ID token>`, a JWT the stack's user "
            "pool issued (signature, issuer, expiry and token use checked before any function runs). The caller's "
            "user, organisation and role are its `sub`, `custom:org_id` and `custom:role` claims, never the "
            "request's."
        ),
    },
    # The leaked-token reports' route has no authorizer: a partner's signature of the body is its
    # credential (token_service.http.secret_scanning), checked by the function.
    "partnerSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Github-Public-Key-Signature",
        "description": (
            "GitHub's secret-scanning partner signature: base64 of the DER ECDSA P-256 SHA-256 signature of the raw "
            "body by the key that `Github-Public-Key-Identifier` names in the partner's key list."
        ),
    },
    "apiToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "lgk_ API token",
        "description": (
            "An API token (`Authorization: Bearer lgk_...`), checked by the token API's Lambda authorizer "
            "(RFC 6750: never in the query string)."
        ),
    },
}
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "required": True, "schema": {"type": "string"}}}
WWW_AUTHENTICATE = {
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750); bad credentials add an error code.",
        "required": True,
        "schema": {"type": "string", "pattern": '^Bearer realm="api-tokens"'},
    }
}
# What API Gateway, its authorizers and the token API's web ACL answer before a handler runs.
CONSOLE_GATEWAY = {
    401: "No valid ID token of the console's user pool and app client, or no usable identity claims.",
    429: ERROR_DESCRIPTIONS[429],
}
TOKEN_GATEWAY = {
    400: "An access_token in the query string (RFC 6750: two ways of sending credentials), or invalid input.",
    401: "No Bearer credentials, or a token that is malformed, unknown, disabled, expired or revoked.",
    429: ERROR_DESCRIPTIONS[429],
    503: "The token could not be checked, or the store is unavailable; retry after Retry-After seconds.",
}
INSUFFICIENT_SCOPE = (
    "The token lacks a scope this route requires, or its address allowlist does not include the "
    "request's source address."
)
ADDRESS_REFUSED = "The token's address allowlist does not include the request's source address."
# Response fields that carry what a path parameter takes (OpenAPI links).
LINK_SOURCES = {"token_id": ("token_id",), "user_id": ("user_id", "owner_id")}


def openapi_document(server_url: str | None = None) -> dict[str, Any]:
    """Merges the OpenAPI schemas of every function's resolver into one document."""
    catalog = default_catalog(management_config().scope_catalog_path)
    enums = {"scopes": list(catalog.descriptions), "roles": list(catalog.roles)}
    needs_scopes = {
        (route.method, route.resource)
        for route in load_route_map(authorizer_config().route_map_path)
        if route.required_scopes
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": "1.0.0"},
        "paths": {},
        "components": {"schemas": {"Error": ERROR_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }
    if server_url:
        document["servers"] = [{"url": server_url}]
    apis = rest_apis()
    # Routes with `Auth: Authorizer: NONE` (the leaked-token reports): the signature, no gateway 401.
    unauthorized = {(route.method, route.resource) for route in api_routes() if not route.authorized}
    seen: set[str] = set()
    for route in api_routes():
        if route.code_dir.name in seen:
            continue
        seen.add(route.code_dir.name)
        module = load_handler_module(route.code_dir, route.handler)
        paths, schemas = module.app.openapi_paths(enums)
        token_api = apis[route.api].authorizer is not None
        for path, operations in paths.items():
            for method, operation in operations.items():
                if (method.upper(), path) in unauthorized:
                    operation["security"] = [{"partnerSignature": []}]
                    _document_errors(operation, {429: ERROR_DESCRIPTIONS[429]}, token_api=False)
                    continue
                operation["security"] = [{"apiToken": []}] if token_api else [{"consoleUser": []}]
                gateway = dict(TOKEN_GATEWAY if token_api else CONSOLE_GATEWAY)
                if token_api:  # every token route: a token with an address allowlist, from elsewhere
                    gateway[403] = INSUFFICIENT_SCOPE if (method.upper(), path) in needs_scopes else ADDRESS_REFUSED
                _document_errors(operation, gateway, token_api)
            document["paths"].setdefault(path, {}).update(operations)
        document["components"]["schemas"].update(schemas)
    _add_links(document)
    return document


def _document_errors(operation: dict[str, Any], gateway: dict[int, str], token_api: bool) -> None:
    """The answers of the gateway in front of the handler, merged into the handler's own."""
    responses = operation["responses"]
    for status, description in gateway.items():
        responses.setdefault(str(status), error_response(description))
    if token_api:
        responses["401"]["headers"] = WWW_AUTHENTICATE
    if "503" in responses:
        responses["503"]["headers"] = RETRY_AFTER
    operation["responses"] = dict(sorted(responses.items()))


def _add_links(document: dict[str, Any]) -> None:
    """A link from each success answer that carries an id (at its top level, or in the first
    item of a list) to each operation whose path takes it: create -> get, revoke, rotate..."""
    schemas = document["components"]["schemas"]
    targets = [
        (operation, [parameter["name"] for parameter in operation.get("parameters", []) if parameter["in"] == "path"])
        for operations in document["paths"].values()
        for operation in operations.values()
    ]
    for operations in document["paths"].values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if not status.startswith("2"):
                    continue
                fields = _id_fields(response["content"]["application/json"]["schema"], schemas)
                links = {}
                for target, path_parameters in targets:
                    pointers = [_source(name, fields) for name in path_parameters]
                    if not path_parameters or None in pointers:
                        continue
                    links[f"{target['operationId']}"] = {
                        "operationId": target["operationId"],
                        "parameters": {
                            f"path.{name}": f"$response.body#{pointer}"
                            for name, pointer in zip(path_parameters, pointers, strict=True)
                        },
                    }
                if links:
                    response["links"] = links


def _source(parameter: str, fields: dict[str, str]) -> str | None:
    return next((fields[name] for name in LINK_SOURCES.get(parameter, (parameter,)) if name in fields), None)


def _id_fields(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, str]:
    """Field name -> JSON pointer of the string fields of a response, and of its lists' first items."""
    properties = _resolve(schema, schemas).get("properties", {})
    fields = {name: f"/{name}" for name, value in properties.items() if value.get("type") == "string"}
    for name, value in properties.items():
        if value.get("type") == "array" and "$ref" in value.get("items", {}):
            for field, pointer in _id_fields(value["items"], schemas).items():
                fields.setdefault(field, f"/{name}/0{pointer}")
    return fields


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref", "")
    return schemas[reference.rsplit("/", 1)[-1]] if reference else schema
