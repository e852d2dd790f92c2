"""The authorizer's API Gateway side, on its own: events in, policies and simple responses out."""

from __future__ import annotations

import pytest

from token_service.domain.authorizer import Decision, Reason
from token_service.domain.records import TokenGrant
from token_service.domain.routes import parse_route_map
from token_service.http.authorizer_events import (
    AuthorizerUnavailable,
    MethodArn,
    Unauthorized,
    arn_path,
    decision_fields,
    parse_event,
    respond,
)

ARN_PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
ROUTES = parse_route_map({"routes": {"GET /v1/reports/{report_id}": ["reports:read"], "POST /v1/imports": ["import"]}})
RECORD = TokenGrant(
    token_id="A" * 16,
    org_id="org-acme",
    owner_id="user-1",
    scopes=("reports:read",),
    expires_at=1_900_000_000,
    secret_hash="0" * 64,
    hash_version=1,
)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (f"{ARN_PREFIX}/GET/v1/reports/42", MethodArn(ARN_PREFIX, "GET", "/v1/reports/42")),
        (f"{ARN_PREFIX}/POST/", MethodArn(ARN_PREFIX, "POST", "/")),
        (f"{ARN_PREFIX}/GET", MethodArn(ARN_PREFIX, "GET", "/")),
        ("arn:aws:execute-api:eu-west-1:123456789012:abc123", None),  # no stage, no method
        ("arn:aws:lambda:eu-west-1:123456789012:function:x/prod/GET/", None),  # not execute-api
        ("not an arn", None),
    ],
)
def test_method_arns_are_parsed_or_refused(arn: str, expected: MethodArn | None) -> None:
    assert MethodArn.parse(arn) == expected


def test_a_token_event_takes_method_and_path_from_the_arn_and_has_no_address() -> None:
    request = parse_event(
        {"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": f"{ARN_PREFIX}/GET/v1/reports/7"}
    )
    assert (request.header, request.method, request.path, request.source_ip) == (
        "Bearer x",
        "GET",
        "/v1/reports/7",
        None,
    )
    assert not request.http_api


def test_a_request_event_reads_headers_case_insensitively_and_the_resource_template() -> None:
    request = parse_event(
        {
            "type": "REQUEST",
            "methodArn": f"{ARN_PREFIX}/GET/v1/reports/7",
            "headers": {"AUTHORIZATION": "Bearer y"},
            "httpMethod": "GET",
            "resource": "/v1/reports/{report_id}",
            "path": "/v1/reports/7",
            "requestContext": {"identity": {"sourceIp": "203.0.113.5"}},
        }
    )
    assert (request.header, request.method, request.path) == ("Bearer y", "GET", "/v1/reports/{report_id}")
    assert request.source_ip == "203.0.113.5" and request.method_arn is not None


def test_an_http_api_event_is_answered_with_a_simple_response() -> None:
    event = {
        "version": "2.0",
        "headers": {"authorization": "Bearer z"},
        "requestContext": {"http": {"method": "POST", "path": "/v1/imports", "sourceIp": "198.51.100.2"}},
    }
    request = parse_event(event)
    assert request.http_api and (request.method, request.path, request.source_ip) == (
        "POST",
        "/v1/imports",
        "198.51.100.2",
    )
    assert respond(Decision(Reason.MALFORMED), request) == {"isAuthorized": False}
    denied = respond(Decision(Reason.INSUFFICIENT_SCOPE, RECORD.token_id, RECORD), request)
    assert denied["isAuthorized"] is False and denied["context"]["token_id"] == RECORD.token_id
    allowed = respond(Decision(Reason.ALLOWED, RECORD.token_id, RECORD), request)
    assert allowed == {
        "isAuthorized": True,
        "context": {
            "token_id": RECORD.token_id,
            "org_id": "org-acme",
            "owner_id": "user-1",
            "scopes": "reports:read",
            "expires_at": "2030-03-17T17:46:40Z",
            "expires_at_epoch": 1_900_000_000,
        },
    }


def test_path_parameters_become_wildcards_and_literal_routes_come_first() -> None:
    assert [arn_path(route) for route in ROUTES] == ["POST/v1/imports", "GET/v1/reports/*"]


def test_a_request_events_policy_covers_its_route_and_a_token_events_exact_arns() -> None:
    allowed = tuple(route for route in ROUTES if route.allows(frozenset(RECORD.scopes)))
    route = allowed[0]
    decision = Decision(Reason.ALLOWED, RECORD.token_id, RECORD, allowed, route)
    request = parse_event(
        {
            "type": "REQUEST",
            "methodArn": f"{ARN_PREFIX}/GET/v1/reports/1",
            "resource": "/v1/reports/{report_id}",
            "httpMethod": "GET",
        }
    )
    policy = respond(decision, request)
    assert policy["principalId"] == "user-1"
    assert policy["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{ARN_PREFIX}/GET/v1/reports/*"]}
    ]
    token = parse_event({"type": "TOKEN", "authorizationToken": "t", "methodArn": f"{ARN_PREFIX}/GET/v1/reports/1"})
    assert respond(decision, token)["policyDocument"]["Statement"][0]["Resource"] == [f"{ARN_PREFIX}/GET/v1/reports/1"]
    star = parse_event({"type": "TOKEN", "authorizationToken": "t", "methodArn": f"{ARN_PREFIX}/GET/v1/reports/*"})
    # A '*' in the requested path would be a wildcard: nothing to allow, so an explicit deny.
    assert respond(decision, star)["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{ARN_PREFIX}/*"]}
    ]
    nothing = respond(Decision(Reason.INSUFFICIENT_SCOPE, RECORD.token_id, RECORD, ()), request)
    assert nothing["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{ARN_PREFIX}/*"]}
    ]


@pytest.mark.parametrize("reason", [Reason.MISSING, Reason.MALFORMED, Reason.UNKNOWN, Reason.REVOKED, Reason.EXPIRED])
def test_unauthenticated_rest_requests_raise_unauthorized(reason: Reason) -> None:
    request = parse_event({"type": "TOKEN", "authorizationToken": "t", "methodArn": f"{ARN_PREFIX}/GET/x"})
    with pytest.raises(Unauthorized, match=r"^Unauthorized$"):
        respond(Decision(reason), request)


def test_a_rest_event_without_a_method_arn_is_refused_and_an_unavailable_store_fails_closed() -> None:
    request = parse_event({"type": "TOKEN", "authorizationToken": "t", "methodArn": "garbage"})
    with pytest.raises(Unauthorized):
        respond(Decision(Reason.ALLOWED, RECORD.token_id, RECORD), request)
    with pytest.raises(AuthorizerUnavailable):
        respond(Decision(Reason.UNAVAILABLE), parse_event({"version": "2.0"}))


def test_the_decision_line_names_the_token_and_route_never_the_header() -> None:
    request = parse_event(
        {"type": "TOKEN", "authorizationToken": "Bearer secret-ish", "methodArn": f"{ARN_PREFIX}/GET/v1/x"}
    )
    fields = decision_fields(Decision(Reason.UNKNOWN, "B" * 16), request, "req-1", None)
    assert fields == {
        "message": "Authorization decision",
        "decision": "deny",
        "token_id": "B" * 16,
        "org_id": None,
        "route": "GET /v1/x",
        "request_id": "req-1",
    }
    failed = decision_fields(Decision(Reason.UNAVAILABLE, last_use_not_recorded=True), request, None, "boom")
    assert failed["error"] == "boom" and failed["last_use_recorded"] is False
    assert "secret-ish" not in repr(fields) + repr(failed)
