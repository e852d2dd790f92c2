"""The authorizer's API Gateway side: its events in (REST TOKEN and REQUEST, HTTP API 2.0),
its answers out (IAM policy or simple response), and its decision line.

API Gateway caches an answer under the values of the authorizer's identity sources and
reuses it for every request with the same values, matching the cached policy's resources
with `*` and `?` as wildcards that also match `/`. So a policy must allow, of the requests
that can share its cache entry, exactly those the token may make:

- REQUEST (the template's): the identity sources are the Authorization header, the method,
  the resource path and the source address, so an entry serves one route of one token from
  one address. The policy allows that route (its path parameters as `*`) when the decision
  allows, and nothing otherwise.
- TOKEN: one entry per token serves every route, from every address. A parameter's `*` would
  also match deeper and sibling paths, so the policy allows only exact ARNs: the
  parameter-free routes the token may use, and the requested path itself when allowed. It
  never over-grants; a cached policy may refuse another path of a parameterised route until
  the entry expires. The event carries no address, so a token with an address allowlist is
  never allowed (its policy allows nothing).
- HTTP API: a simple response for the requested route; its identity sources must include
  `$context.routeKey` and `$context.identity.sourceIp` for the same reasons (README).

On the path of every API request: standard library only.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from token_service.domain.authorizer import UNAUTHENTICATED, Decision, Reason
from token_service.domain.clock import to_iso
from token_service.domain.routes import ProtectedRoute

_PATH_PARAMETER = re.compile(r"\{[^}]+\}")
TOKEN, REQUEST, HTTP = "TOKEN", "REQUEST", "HTTP"
_WILDCARDS = frozenset("*?")


class Unauthorized(Exception):
    """API Gateway answers exactly this message with 401 (gateway response UNAUTHORIZED)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


class AuthorizerUnavailable(Exception):
    """The token could not be checked: fail closed with a 500 that API Gateway does not cache."""


class MethodArn(NamedTuple):  # NamedTuples: built on every request, and cheaper than dataclasses
    """arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}/{path}"""

    prefix: str  # arn:aws:execute-api:{region}:{account}:{api_id}/{stage}
    method: str
    path: str

    @classmethod
    def parse(cls, arn: str) -> MethodArn | None:
        parts = arn.split(":", 5)
        if len(parts) != 6 or parts[2] != "execute-api":
            return None
        api_id, _, rest = parts[5].partition("/")
        stage, _, rest = rest.partition("/")
        method, _, path = rest.partition("/")
        if not api_id or not stage or not method:
            return None
        return cls(prefix=f"{':'.join(parts[:5])}:{api_id}/{stage}", method=method, path=f"/{path}")


class AuthorizationRequest(NamedTuple):
    header: str | None
    method: str
    path: str  # the resource template where the event has one (REQUEST, HTTP API route key)
    source_ip: str | None
    method_arn: MethodArn | None
    kind: str  # TOKEN, REQUEST or HTTP (payload 2.0)

    @property
    def http_api(self) -> bool:
        return self.kind == HTTP


def _header(headers: dict[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value) if value is not None else None
    return None


def parse_event(event: dict[str, Any]) -> AuthorizationRequest:
    if event.get("version") == "2.0":  # HTTP API
        context = event.get("requestContext", {})
        http = context.get("http", {})
        # The route key names the route's template ("GET /v1/reports/{report_id}"), as the cache does.
        route_method, _, route_path = str(context.get("routeKey", "")).partition(" ")
        return AuthorizationRequest(
            header=_header(event.get("headers"), "authorization"),
            method=str(http.get("method", "")),
            path=route_path if route_method == http.get("method") and route_path else str(http.get("path", "")),
            source_ip=http.get("sourceIp"),
            method_arn=None,
            kind=HTTP,
        )
    method_arn = MethodArn.parse(str(event.get("methodArn", "")))
    if event.get("type") == "REQUEST":
        return AuthorizationRequest(
            header=_header(event.get("headers"), "authorization"),
            method=str(event.get("httpMethod", "")),
            path=str(event.get("resource") or event.get("path") or ""),
            source_ip=event.get("requestContext", {}).get("identity", {}).get("sourceIp"),
            method_arn=method_arn,
            kind=REQUEST,
        )
    return AuthorizationRequest(
        header=event.get("authorizationToken"),
        method=method_arn.method if method_arn else "",
        path=method_arn.path if method_arn else "",
        source_ip=None,  # TOKEN events carry no source address
        method_arn=method_arn,
        kind=TOKEN,
    )


def arn_path(route: ProtectedRoute) -> str:
    """The route as a method ARN suffix: path parameters become wildcards."""
    return route.method + _PATH_PARAMETER.sub("*", route.resource)


def backend_context(decision: Decision) -> dict[str, str | int | bool]:
    """What the backend receives as requestContext.authorizer: strings and numbers only."""
    record = decision.record
    assert record is not None
    return {
        "token_id": record.token_id,
        "org_id": record.org_id,
        "owner_id": record.owner_id,
        "scopes": " ".join(record.scopes),
        "expires_at": to_iso(record.expires_at),
        "expires_at_epoch": record.expires_at,
    }


def policy_resources(decision: Decision, request: AuthorizationRequest, method_arn: MethodArn) -> list[str]:
    """The method ARNs the policy allows: exact for what can share the request's cache entry."""
    if request.kind == REQUEST:
        route = decision.route
        return [f"{method_arn.prefix}/{arn_path(route)}"] if decision.allowed and route is not None else []
    exact = [f"{method_arn.prefix}/{arn_path(route)}" for route in decision.allowed_routes if not route.has_parameters]
    requested = f"{method_arn.prefix}/{method_arn.method}{method_arn.path}"
    # A '*' or '?' in the path itself would be a wildcard in the policy.
    if decision.allowed and requested not in exact and not _WILDCARDS & set(method_arn.path):
        exact.append(requested)
    return exact


def rest_policy(decision: Decision, request: AuthorizationRequest, method_arn: MethodArn) -> dict[str, Any]:
    """An IAM policy that allows what `policy_resources` lists and denies everything else."""
    record = decision.record
    assert record is not None
    allowed = policy_resources(decision, request, method_arn)
    statement = (
        [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": allowed}]
        if allowed
        else [{"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{method_arn.prefix}/*"]}]
    )
    return {
        "principalId": record.owner_id,
        "policyDocument": {"Version": "2012-10-17", "Statement": statement},
        "context": backend_context(decision),
    }


def respond(decision: Decision, request: AuthorizationRequest) -> dict[str, Any]:
    """The authorizer's answer to API Gateway; raises for 401 (Unauthorized) and for 500."""
    if decision.reason is Reason.UNAVAILABLE:
        raise AuthorizerUnavailable("token store unavailable")
    if request.http_api:
        if decision.reason in UNAUTHENTICATED:
            return {"isAuthorized": False}
        return {"isAuthorized": decision.allowed, "context": backend_context(decision)}
    if decision.reason in UNAUTHENTICATED or request.method_arn is None:
        raise Unauthorized()
    return rest_policy(decision, request, request.method_arn)


def decision_fields(
    decision: Decision, request: AuthorizationRequest, request_id: str | None, failure: str | None
) -> dict[str, Any]:
    """The decision line's fields. Never the token or the Authorization header."""
    record = decision.record
    fields: dict[str, Any] = {
        "message": "Authorization decision",
        "decision": "allow" if decision.allowed else "deny",
        "token_id": decision.token_id,
        "org_id": record.org_id if record else None,
        "route": f"{request.method} {request.path}",
        "request_id": request_id,
    }
    if decision.reason is Reason.IP_NOT_ALLOWED:
        # The address the token is not for (None: a TOKEN event), as API Gateway gave it.
        fields["source_ip"] = str(request.source_ip)[:64] if request.source_ip is not None else None
    if decision.last_use_not_recorded:
        fields["last_use_recorded"] = False
    if failure:
        fields["error"] = failure
    return fields
