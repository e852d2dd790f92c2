"""RFC 6750's answers as template.yaml configures them: the token API's web ACL answers the
requests that carry no Bearer credentials (401 without an error code) or carry a token in two
places (400 invalid_request); the gateway responses answer bad credentials (401
invalid_token) and a missing scope (403 insufficient_scope); all four name the same realm.
The web ACL is evaluated here by the dev server's emulation of AWS WAF (devserver/waf.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devserver.template import load_template
from devserver.waf import WafRequest, stage_web_acls, web_acl
from token_service.domain.authorizer import bearer_token

RESOURCES: dict[str, Any] = load_template()["Resources"]
REALM = 'realm="api-tokens"'
TOKEN = "lgk_" + "A" * 54  # the shape of a token; the web ACL never looks further than the scheme
NO_CREDENTIALS = {
    "status": 401,
    "challenge": f"Bearer {REALM}",
    "body": {
        "error": {
            "code": "not_authenticated",
            "message": "This API needs an access token: Authorization: Bearer <token>.",
        }
    },
}
TWO_PLACES = {
    "status": 400,
    "challenge": f'Bearer {REALM}, error="invalid_request"',
    "body": {
        "error": {
            "code": "invalid_request",
            "message": "Send the access token in the Authorization header only, never in the query string.",
        }
    },
}


def inspect(headers: dict[str, str], query: dict[str, list[str]] | None = None) -> Any:
    return stage_web_acls()["TokenApi"].inspect(WafRequest("GET", "/v1/token", headers, query or {}))


def gateway_challenge(response_type: str) -> str:
    headers = RESOURCES["TokenApi"]["Properties"]["GatewayResponses"][response_type]["ResponseParameters"]["Headers"]
    value = str(headers["WWW-Authenticate"])
    assert value.startswith("'") and value.endswith("'"), "a static gateway response value is quoted"
    return value[1:-1]


def test_the_token_api_stage_is_behind_the_web_acl() -> None:
    association = RESOURCES["TokenApiWebAclAssociation"]["Properties"]
    assert association["WebACLArn"] == {"GetAtt": "TokenApiWebAcl.Arn"}
    assert association["ResourceArn"] == {
        "Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${TokenApi}/stages/${TokenApi.Stage}"
    }
    acl = RESOURCES["TokenApiWebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL"  # API Gateway takes regional web ACLs only
    assert acl["DefaultAction"] == {"Allow": {}}
    assert [rule["Name"] for rule in stage_web_acls()["TokenApi"].rules] == [
        "NoBearerCredentials",
        "TokenInQueryString",
    ]
    assert set(stage_web_acls()) == {"TokenApi"}  # the console API (Cognito) has none


def test_the_web_acl_keeps_no_sample_of_a_request() -> None:
    """Sampled requests keep headers and query strings (Authorization, access_token) for hours."""
    acl = RESOURCES["TokenApiWebAcl"]["Properties"]
    for config in [acl["VisibilityConfig"], *(rule["VisibilityConfig"] for rule in acl["Rules"])]:
        assert config["SampledRequestsEnabled"] is False
    assert not any(resource["Type"] == "AWS::WAFv2::LoggingConfiguration" for resource in RESOURCES.values())


def test_the_gateway_responses_challenge_bad_credentials_and_missing_scopes_in_the_same_realm() -> None:
    responses = RESOURCES["TokenApi"]["Properties"]["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert gateway_challenge("UNAUTHORIZED") == f'Bearer {REALM}, error="invalid_token"'
    assert json.loads(responses["UNAUTHORIZED"]["ResponseTemplates"]["application/json"])["error"]["code"] == (
        "invalid_token"
    )
    assert responses["ACCESS_DENIED"]["StatusCode"] == "403"
    assert gateway_challenge("ACCESS_DENIED") == f'Bearer {REALM}, error="insufficient_scope"'
    for response_type in ("UNAUTHORIZED", "ACCESS_DENIED"):
        assert responses[response_type]["ResponseParameters"]["Headers"]["Cache-Control"] == "'no-store'"


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        pytest.param({}, {}, NO_CREDENTIALS, id="no Authorization header"),
        pytest.param({"Authorization": "Bearer"}, {}, NO_CREDENTIALS, id="Bearer with no token"),
        pytest.param({"Authorization": ""}, {}, NO_CREDENTIALS, id="empty header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, {}, NO_CREDENTIALS, id="another scheme"),
        pytest.param({"Authorization": f"Token {TOKEN}"}, {}, NO_CREDENTIALS, id="a token under another scheme"),
        pytest.param({"Authorization": f"Bearer{TOKEN}"}, {}, NO_CREDENTIALS, id="no space after the scheme"),
        pytest.param({}, {"access_token": [TOKEN]}, NO_CREDENTIALS, id="token in the query string only"),
        pytest.param({}, {"Access_Token": [TOKEN]}, NO_CREDENTIALS, id="query argument names ignore case"),
        pytest.param(
            {"Authorization": "Basic dXNlcjpwYXNz"}, {"access_token": [TOKEN]}, NO_CREDENTIALS, id="query and Basic"
        ),
        pytest.param({"Authorization": f"Bearer {TOKEN}"}, {"access_token": [TOKEN]}, TWO_PLACES, id="two places"),
        pytest.param(
            {"authorization": f"bearer {TOKEN}"}, {"ACCESS_TOKEN": ["x"]}, TWO_PLACES, id="two places, any case"
        ),
    ],
)
def test_requests_without_usable_bearer_credentials_are_answered_by_the_web_acl(
    headers: dict[str, str], query: dict[str, list[str]], expected: dict[str, Any]
) -> None:
    answer = inspect(headers, query)
    assert answer is not None
    assert answer.status == expected["status"]
    assert answer.headers == {
        "Content-Type": "application/json",
        "WWW-Authenticate": expected["challenge"],
        "Cache-Control": "no-store",
    }
    assert json.loads(answer.body) == expected["body"]


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {TOKEN}",
        f"bearer {TOKEN}",  # the scheme is case-insensitive (RFC 9110 section 11.1)
        f"BEARER   {TOKEN}",
        "Bearer lgk_nope",  # malformed: the authorizer's 401 invalid_token, not the web ACL's
        "Bearer not a token",
    ],
)
def test_requests_with_bearer_credentials_go_on_to_api_gateway(authorization: str) -> None:
    assert inspect({"Authorization": authorization}) is None
    assert inspect({"Authorization": authorization}, {"access_token": [""], "other": ["x"]}) is None


# HTTP delivers header values without leading or trailing white space (RFC 9112 section 5.1).
HEADER_VALUES = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80).map(lambda text: f"Bearer {text}"),
    st.sampled_from(["bearer", "Bearer ", "bearer  x", "BeArEr y z"]),
).map(str.strip)


@given(header=HEADER_VALUES)
def test_the_web_acl_never_refuses_a_header_the_authorizer_would_read_a_token_from(header: str) -> None:
    if bearer_token(header) is not None:
        assert inspect({"Authorization": header}) is None, header


def test_a_web_acl_the_emulation_cannot_evaluate_fails_at_load(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Resources:\n"
        "  Acl:\n"
        "    Type: AWS::WAFv2::WebACL\n"
        "    Properties:\n"
        "      DefaultAction: {Allow: {}}\n"
        "      Rules:\n"
        "        - Name: ByCountry\n"
        "          Priority: 0\n"
        "          Statement: {GeoMatchStatement: {CountryCodes: [XX]}}\n"
        "          Action: {Block: {}}\n"
    )
    with pytest.raises(ValueError, match="GeoMatchStatement is not emulated"):
        web_acl("Acl", template)
