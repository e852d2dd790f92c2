"""The deployed console (template.yaml): a private bucket that only the stack's CloudFront
distribution reads (origin access control), HTTPS, security headers on every response, the
outputs `make deploy` reads; and CORS for the console's origin only, on the console API's
preflights, its functions' answers and API Gateway's own errors, never on the token API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from devserver.gateway import cors_preflight, gateway_response, unknown_route
from devserver.template import CONSOLE_ORIGIN_VALUE, ROOT, api_routes, header_value, load_template, rest_apis
from token_service.config import ConfigurationError, ManagementConfig
from token_service.http.proxy import lambda_handler_for
from token_service.http.responses import cors_headers
from token_service.http.rest import JsonResponse, RestResolver

TEMPLATE = load_template()
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
CONSOLE_ORIGIN = {"Sub": "https://${ConsoleDistribution.DomainName}"}  # the functions' CONSOLE_ORIGIN
LOCAL_ORIGIN = "http://127.0.0.1:3000"


def properties(logical_id: str) -> dict[str, Any]:
    return dict(RESOURCES[logical_id]["Properties"])


def csp_directives() -> dict[str, list[str]]:
    config = properties("ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]
    policy = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Sub"]
    policy = policy[0] if isinstance(policy, list) else policy  # !Sub [text, {variables}]
    directives = [directive.split() for directive in policy.split(";") if directive.strip()]
    return {name: sources for name, *sources in directives}


def functions_of(api: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in RESOURCES.items()
        if resource["Type"] == "AWS::Serverless::Function"
        and any(
            event["Properties"].get("RestApiId") == {"Ref": api}
            for event in resource["Properties"].get("Events", {}).values()
            if event["Type"] == "Api"
        )
    }


# -- hosting -------------------------------------------------------------------------------


def test_the_console_bucket_is_private_encrypted_and_kept_when_the_stack_goes() -> None:
    bucket = RESOURCES["ConsoleBucket"]
    assert set(bucket["Properties"]["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["Properties"]["PublicAccessBlockConfiguration"]) == 4
    assert bucket["Properties"]["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # Deleting a bucket that holds objects fails, and would stop a stack deletion half-way.
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


def test_only_the_stack_s_distribution_reads_the_bucket_and_only_over_tls() -> None:
    policy = properties("ConsoleBucketPolicy")
    assert policy["Bucket"] == {"Ref": "ConsoleBucket"}
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert (allow["Effect"], allow["Principal"], allow["Action"]) == (
        "Allow",
        {"Service": "cloudfront.amazonaws.com"},
        "s3:GetObject",
    )
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Sub"]
    assert source.endswith(":distribution/${ConsoleDistribution}")
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_cloudfront_reads_through_origin_access_control_over_https_with_the_security_headers() -> None:
    control = properties("ConsoleOriginAccessControl")["OriginAccessControlConfig"]
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"], control["SigningProtocol"]) == (
        "s3",
        "always",
        "sigv4",
    )
    config = properties("ConsoleDistribution")["DistributionConfig"]
    [origin] = config["Origins"]
    assert origin["OriginAccessControlId"] == {"GetAtt": "ConsoleOriginAccessControl.Id"}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}  # no legacy OAI
    assert origin["DomainName"] == {"GetAtt": "ConsoleBucket.RegionalDomainName"}
    assert config["DefaultRootObject"] == "index.html"
    assert "CacheBehaviors" not in config  # one behaviour: every path gets the headers below
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] in {"https-only", "redirect-to-https"}
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "ConsoleResponseHeadersPolicy"}
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]


def test_every_page_gets_a_strict_content_security_policy() -> None:
    directives = csp_directives()
    for name in ("default-src", "script-src", "style-src"):
        assert directives[name] == ["'self'"], name
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["connect-src"] == [
        "'self'",
        "https://*.execute-api.${AWS::Region}.amazonaws.com",  # narrowed per page by tools/deploy_console.py
        "${AuthDomainUrl}",  # the managed login domain: ConsoleAuthDomain's, or ExistingUserPoolDomain
    ]
    everything = " ".join(source for sources in directives.values() for source in sources)
    assert "unsafe" not in everything and "data:" not in everything and " * " not in f" {everything} "


def test_every_page_gets_the_other_security_headers_overriding_the_origin_s() -> None:
    config = properties("ConsoleResponseHeadersPolicy")["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert config["FrameOptions"]["FrameOption"] == "DENY"
    assert "ContentTypeOptions" in config  # X-Content-Type-Options: nosniff
    assert config["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    assert config["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert all(header["Override"] is True for header in config.values())


def test_the_outputs_name_the_console_and_what_make_deploy_reads() -> None:
    outputs = TEMPLATE["Outputs"]
    assert outputs["ConsoleUrl"]["Value"] == CONSOLE_ORIGIN
    assert outputs["ConsoleBucketName"]["Value"] == {"Ref": "ConsoleBucket"}
    assert outputs["ConsoleDistributionId"]["Value"] == {"Ref": "ConsoleDistribution"}
    read = {"ApiUrl", "UserPoolId", "UserPoolClientId", "ConsoleAuthDomainUrl"}  # tools/deploy_console.py
    assert read <= set(outputs)
    assert "ConsoleAuthDomainUrl" in (ROOT / "tools" / "deploy_console.py").read_text(encoding="utf-8")


# -- CORS in the template --------------------------------------------------------------------


def test_the_console_api_answers_preflights_for_the_console_s_origin_only() -> None:
    cors = properties("ConsoleApi")["Cors"]
    assert cors["AllowOrigin"] == CONSOLE_ORIGIN_VALUE
    assert cors["AllowHeaders"] == "'Authorization,Content-Type'"
    assert "AllowMethods" not in cors  # SAM lists each path's own methods
    assert cors.get("AllowCredentials") is not True  # bearer tokens, no cookies
    assert properties("ConsoleApi")["Auth"]["AddDefaultAuthorizerToCorsPreflight"] is False
    assert "Cors" not in properties("TokenApi")
    assert "Cors" not in TEMPLATE.get("Globals", {}).get("Api", {})


def test_every_gateway_response_of_the_console_api_allows_the_console_and_none_of_the_token_api_does() -> None:
    """API Gateway's own 4xx and 5xx must reach the console's scripts too: a 401 the console
    cannot read looks like a network failure. A type configured on its own would not inherit
    DEFAULT_4XX's headers, so every configured response is checked."""
    console = properties("ConsoleApi")["GatewayResponses"]
    assert {"DEFAULT_4XX", "DEFAULT_5XX"} <= set(console)
    for name, response in console.items():
        headers = response["ResponseParameters"]["Headers"]
        assert headers["Access-Control-Allow-Origin"] == CONSOLE_ORIGIN_VALUE, name
        assert headers["Vary"] == "'Origin'", name
    for name, response in properties("TokenApi")["GatewayResponses"].items():
        headers = response.get("ResponseParameters", {}).get("Headers", {})
        assert not any(header.lower().startswith("access-control-") for header in headers), name


def test_the_console_api_s_functions_allow_the_console_s_origin_and_the_token_api_s_do_not() -> None:
    console, token = functions_of("ConsoleApi"), functions_of("TokenApi")
    assert console and token and not set(console) & set(token)
    for logical_id, function in console.items():
        assert function["Environment"]["Variables"]["CONSOLE_ORIGIN"] == CONSOLE_ORIGIN, logical_id
    for logical_id, function in token.items():
        assert "CONSOLE_ORIGIN" not in function.get("Environment", {}).get("Variables", {}), logical_id
    assert "CONSOLE_ORIGIN" not in TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


# -- CORS in the functions -------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://d1234abcd.cloudfront.net", "http://127.0.0.1:3000"])
def test_console_origin_is_one_origin(origin: str) -> None:
    config = ManagementConfig.from_environ({"TABLE_NAME": "t", "CONSOLE_ORIGIN": origin})
    assert config.console_origin == origin
    assert ManagementConfig.from_environ({"TABLE_NAME": "t"}).console_origin is None


@pytest.mark.parametrize(
    "origin",
    ["*", "null", "d1234abcd.cloudfront.net", "https://d1234.cloudfront.net/", "https://a.example/console",
     "https://a.example,https://b.example", "https://a.example https://b.example", "ftp://a.example"],
)  # fmt: skip
def test_console_origin_is_never_a_wildcard_list_or_path(origin: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ManagementConfig.from_environ({"TABLE_NAME": "t", "CONSOLE_ORIGIN": origin})
    assert raised.value.variable == "CONSOLE_ORIGIN"


class Things(BaseModel):
    things: list[str]


class Context:
    function_name = "ConsoleFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ConsoleFunction"
    aws_request_id = "request-1"


def handle(cors_origin: str | None, path: str) -> dict[str, Any]:
    app = RestResolver()

    @app.route("GET", "/things", summary="List things", response=Things)
    def things() -> JsonResponse:
        return JsonResponse(200, {"things": []}, {"Cache-Control": "no-store"})

    handler = lambda_handler_for(app, False, cors_origin=cors_origin)
    event = {"httpMethod": "GET", "path": path, "headers": {}, "requestContext": {"requestId": "r1"}, "body": None}
    return handler(event, Context())  # type: ignore[arg-type]


def test_a_console_function_s_answers_and_errors_allow_the_console_s_origin() -> None:
    origin = "https://d1234abcd.cloudfront.net"
    for path, status in (("/things", 200), ("/nothing-here", 404)):
        result = handle(origin, path)
        assert result["statusCode"] == status
        assert result["headers"]["Access-Control-Allow-Origin"] == origin
        assert result["headers"]["Vary"] == "Origin"
        assert result["headers"]["Content-Type"] == "application/json"


def test_a_function_without_a_console_origin_sends_no_cors_headers() -> None:
    assert cors_headers(None) == {}
    result = handle(None, "/things")
    assert result["statusCode"] == 200
    assert not any(name.lower().startswith("access-control-") or name == "Vary" for name in result["headers"])


# -- the dev server's emulation ----------------------------------------------------------------


def test_the_emulated_preflight_is_sam_s_options_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_ORIGIN", LOCAL_ORIGIN)
    expected_methods = {"/tokens": "GET,OPTIONS,POST", "/tokens/abc": "DELETE,GET,OPTIONS,PATCH"}
    expected_methods |= {"/tokens/revoke": "OPTIONS,POST", "/scopes": "GET,OPTIONS"}
    for path, methods in expected_methods.items():
        answer = cors_preflight(path)
        assert answer is not None and answer.status == 200, path
        assert answer.headers == {
            "Content-Type": "application/json",
            "Access-Control-Allow-Origin": LOCAL_ORIGIN,
            "Access-Control-Allow-Headers": "Authorization,Content-Type",
            "Access-Control-Allow-Methods": methods,
            "Access-Control-Max-Age": "600",
        }
    # The token API has no OPTIONS methods; a path no resource has, none either.
    assert cors_preflight("/v1/token") is None and cors_preflight("/tokens/a/b") is None


def test_the_emulated_gateway_responses_carry_the_console_s_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_ORIGIN", LOCAL_ORIGIN)
    console = rest_apis()["ConsoleApi"]
    for kind, status in (("UNAUTHORIZED", 401), ("AUTHORIZER_FAILURE", 500), ("THROTTLED", 400)):
        answer = gateway_response(console, kind, "message")
        assert (answer.headers["Access-Control-Allow-Origin"], answer.headers["Vary"]) == (LOCAL_ORIGIN, "Origin")
        assert answer.status == status or kind == "THROTTLED"
        assert json.loads(answer.body)["error"]["code"] == kind
    assert "Access-Control-Allow-Origin" in unknown_route("/tokens/a/b").headers
    assert not any(name.startswith("Access-Control-") for name in unknown_route("/v1/token/x/y").headers)
    monkeypatch.delenv("CONSOLE_ORIGIN")  # no console: no header names one
    assert "Access-Control-Allow-Origin" not in gateway_response(console, "UNAUTHORIZED", "message").headers


def test_a_header_value_the_emulation_cannot_resolve_is_an_error() -> None:
    assert header_value("'no-store'", None) == "no-store"
    assert header_value(CONSOLE_ORIGIN_VALUE, LOCAL_ORIGIN) == LOCAL_ORIGIN
    with pytest.raises(ValueError, match="no local value"):
        header_value({"Sub": "'https://${SomethingElse.DomainName}'"}, LOCAL_ORIGIN)


def test_the_emulated_preflights_are_the_options_methods_sam_generates(monkeypatch: pytest.MonkeyPatch) -> None:
    """SAM's own translation of template.yaml (as `sam deploy` submits it): every console API
    resource, and no token API resource, has an OPTIONS method whose mock answer is the one the
    dev server gives, value for value."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("CONSOLE_ORIGIN", LOCAL_ORIGIN)
    template = yaml_parse((ROOT / "template.yaml").read_text(encoding="utf-8"))
    for resource in template["Resources"].values():  # SAM wants packaged code to translate
        for key in ("CodeUri", "ContentUri"):
            if key in resource.get("Properties", {}):
                resource["Properties"][key] = "s3://bucket/code.zip"
    translated = transform(template, {}, NoManagedPolicies())["Resources"]
    token_paths = translated["TokenApi"]["Properties"]["Body"]["paths"]
    assert not any("options" in methods for methods in token_paths.values())
    paths = translated["ConsoleApi"]["Properties"]["Body"]["paths"]
    assert set(paths) == {route.resource for route in api_routes() if route.api == "ConsoleApi"}
    for resource, methods in paths.items():
        options = methods["options"]
        assert "security" not in options  # no authorizer on the preflight
        [answer] = options["x-amazon-apigateway-integration"]["responses"].values()
        expected = {
            name.removeprefix("method.response.header."): header_value(
                {"Sub": value["Fn::Sub"]} if isinstance(value, dict) else value, LOCAL_ORIGIN
            )
            for name, value in answer["responseParameters"].items()
        }
        emulated = cors_preflight(resource.replace("{token_id}", "abc").replace("{user_id}", "someone"))
        assert emulated is not None and emulated.status == int(answer["statusCode"]), resource
        assert {name: value for name, value in emulated.headers.items() if name != "Content-Type"} == expected
