"""The token authorizer: every decision, cache safety, fail-closed, last use, logs, metrics."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from support import (
    FLUSH_QUEUE_URL,
    METHOD_ARN_PREFIX,
    TOKEN_PATTERN,
    authorize,
    call_self_service,
    http_api_event,
    load_event,
    mint,
    request_event,
    self_service_event,
    token_event,
    with_other_secret,
)

from devserver.gateway import policy_allows
from devserver.template import ROOT, load_template
from token_service import wiring
from token_service.domain.token_format import checksum

# -- 401: malformed and missing, without any database read --------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token lgk_abc",
        "Bearer lgk_short",
        "Bearer xyz_" + "A" * 54,
        "Bearer lgk_" + "A" * 53 + "!",
        "Bearer lgk_" + "A" * 60,
        "Bearer " + "lgk_" + "A" * 54,  # right shape, wrong checksum
        "Bearer lgk_" + "A" * 54 + " extra",
        "Bearer " + "x" * 5000,
    ],
)
def test_malformed_or_missing_credentials_are_401_without_a_database_read(authorizer_app, header):
    event = load_event("authorizer_token.json")
    event["authorizationToken"] = header
    with Stubber(authorizer_app.authorizer.repository.client) as stubber:
        with pytest.raises(Exception, match=r"^Unauthorized$") as raised:
            authorize(authorizer_app, event)
        stubber.assert_no_pending_responses()
    assert type(raised.value).__name__ == "Unauthorized"


def test_single_character_typo_is_caught_by_the_checksum_offline(authorizer_app):
    token = mint(["reports:read"])
    typo = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    with Stubber(authorizer_app.authorizer.repository.client), pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(authorizer_app, token_event(typo))


# -- 401: unknown, wrong secret, revoked, expired: indistinguishable ----------------------


def _unauthorized_answer(app: Any, event: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(Exception, match="Unauthorized") as raised:
        authorize(app, event)
    return type(raised.value).__name__, str(raised.value)


def test_unknown_wrong_secret_revoked_and_expired_tokens_get_the_same_401(authorizer_app, member):
    valid = mint(["reports:read"])
    unknown_unchecked = "lgk_" + "Z" * 48
    unknown = unknown_unchecked + checksum(unknown_unchecked)
    revoked = mint(["reports:read"])
    token_id = revoked[4:20]
    assert member.request("DELETE", f"/tokens/{token_id}").status == 200
    expiring = mint(["reports:read"])

    answers = {
        "unknown": _unauthorized_answer(authorizer_app, token_event(unknown)),
        "wrong secret": _unauthorized_answer(authorizer_app, token_event(with_other_secret(valid))),
        "revoked": _unauthorized_answer(authorizer_app, token_event(revoked)),
    }
    # Expired by the item's own expiry time, although DynamoDB TTL has not deleted it.
    authorizer_app.authorizer.clock = lambda: 4_102_444_800.0  # 2100-01-01
    answers["expired"] = _unauthorized_answer(authorizer_app, token_event(expiring))
    assert set(answers.values()) == {("Unauthorized", "Unauthorized")}


def test_http_api_answers_unauthenticated_tokens_identically(authorizer_app, member):
    valid = mint(["reports:read"])
    revoked = mint(["reports:read"])
    member.request("DELETE", f"/tokens/{revoked[4:20]}")
    answers = [
        authorize(authorizer_app, http_api_event(token))
        for token in ("lgk_nonsense", with_other_secret(valid), revoked)
    ]
    assert answers == [{"isAuthorized": False}] * 3


# -- 403 and allow: the cached policy is right for every route ----------------------------


def test_valid_token_is_allowed_with_its_identity_in_the_context(authorizer_app):
    token = mint(["reports:read", "import:builds"])
    result = authorize(authorizer_app, token_event(token, "GET", "v1/reports"))
    assert policy_allows(result, f"{METHOD_ARN_PREFIX}/GET/v1/reports")
    context = result["context"]
    assert context["token_id"] == token[4:20]
    assert context["org_id"] == "org-acme"
    assert context["owner_id"] == "user-member"
    assert context["scopes"].split(" ") == ["import:builds", "reports:read"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", context["expires_at"])
    assert all(isinstance(value, str | int | bool) for value in context.values())
    assert result["principalId"] == "user-member"


def test_missing_scope_is_denied_by_the_policy_so_api_gateway_answers_403(authorizer_app):
    token = mint(["reports:read"])
    result = authorize(authorizer_app, token_event(token, "POST", "v1/import/builds"))
    assert not policy_allows(result, f"{METHOD_ARN_PREFIX}/POST/v1/import/builds")
    assert "context" in result  # authenticated: a policy, not a 401


def test_a_token_events_cached_policy_allows_exact_routes_only(authorizer_app):
    """A TOKEN authorizer's answer is cached per token for every route: it lists exact ARNs
    (the parameter-free routes the token may use, and the requested path), never a wildcard
    that would also match deeper or sibling paths."""
    token = mint(["reports:read", "datastudio:read"])
    cached = authorize(authorizer_app, token_event(token, "GET", "v1/reports/r-42"))
    assert policy_allows(cached, f"{METHOD_ARN_PREFIX}/GET/v1/reports/r-42")
    assert policy_allows(cached, f"{METHOD_ARN_PREFIX}/GET/v1/reports")
    assert policy_allows(cached, f"{METHOD_ARN_PREFIX}/GET/v1/datastudio/models")
    # Another path of a parameterised route needs its own check (a 403 from this cache entry).
    assert not policy_allows(cached, f"{METHOD_ARN_PREFIX}/GET/v1/reports/r-43")
    assert not policy_allows(cached, f"{METHOD_ARN_PREFIX}/GET/v1/reports/r-42/export")
    # API Gateway reuses the cached policy for the next route this token calls.
    for write in (
        "POST/v1/import/builds",
        "POST/v1/datastudio/transformations",
        "DELETE/v1/datastudio/transformations/t1",
    ):
        assert not policy_allows(cached, f"{METHOD_ARN_PREFIX}/{write}"), write
    # Nor does it reach another API or stage.
    assert not policy_allows(cached, "arn:aws:execute-api:us-east-1:123456789012:otherapi/dev/GET/v1/reports")
    assert not policy_allows(cached, "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/prod/GET/v1/reports")


def test_unmapped_routes_are_denied(authorizer_app):
    token = mint(["reports:read"])
    result = authorize(authorizer_app, token_event(token, "GET", "v1/admin/secrets"))
    assert not policy_allows(result, f"{METHOD_ARN_PREFIX}/GET/v1/admin/secrets")


def test_token_without_any_routable_scope_gets_an_explicit_deny(authorizer_app, monkeypatch):
    token = mint(["import:teams"], user="user-admin", role="admin")
    monkeypatch.setattr(authorizer_app.authorizer, "routes", ())
    result = authorize(authorizer_app, token_event(token))
    assert [statement["Effect"] for statement in result["policyDocument"]["Statement"]] == ["Deny"]


def test_request_authorizer_events_use_the_resource_and_record_the_source_ip(authorizer_app):
    token = mint(["import:builds"])
    result = authorize(authorizer_app, request_event(token))
    assert policy_allows(result, f"{METHOD_ARN_PREFIX}/POST/v1/import/builds")
    record = wiring.get_service().repository.get_token(token[4:20])
    assert record is not None and record.last_used_ip == "203.0.113.10"


def test_http_api_simple_response_follows_the_requested_route(authorizer_app):
    token = mint(["reports:read"])
    allowed = authorize(authorizer_app, http_api_event(token, "GET", "/v1/reports"))
    assert allowed["isAuthorized"] is True
    assert allowed["context"]["org_id"] == "org-acme"
    denied = authorize(authorizer_app, http_api_event(token, "POST", "/v1/import/builds"))
    assert denied["isAuthorized"] is False


# -- fail closed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "ValidationException",
        "UnrecognizedClientException",
    ],
)
def test_any_dynamodb_error_denies(authorizer_app, code):
    token = mint(["reports:read"])
    with Stubber(authorizer_app.authorizer.repository.client) as stubber:
        stubber.add_client_error("get_item", service_error_code=code, http_status_code=400)
        with pytest.raises(Exception, match="token store unavailable") as raised:
            authorize(authorizer_app, token_event(token))
    assert type(raised.value).__name__ == "AuthorizerUnavailable"


def test_a_timeout_denies(authorizer_app, monkeypatch):
    token = mint(["reports:read"])

    def timeout(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    monkeypatch.setattr(authorizer_app.authorizer.repository.client, "get_item", timeout)
    with pytest.raises(Exception, match="token store unavailable") as raised:
        authorize(authorizer_app, token_event(token))
    assert type(raised.value).__name__ == "AuthorizerUnavailable"


def test_an_unexpected_error_denies(authorizer_app, monkeypatch):
    token = mint(["reports:read"])
    monkeypatch.setattr(authorizer_app.authorizer.repository, "get_grant", lambda _: 1 / 0)
    with pytest.raises(Exception, match="token store unavailable") as raised:
        authorize(authorizer_app, token_event(token))
    assert type(raised.value).__name__ == "AuthorizerUnavailable"


def test_the_client_uses_standard_retries_and_short_timeouts(authorizer_app):
    config = authorizer_app.authorizer.repository.client.meta.config
    assert config.retries["mode"] == "standard"
    assert config.retries["total_max_attempts"] <= 3
    assert config.connect_timeout <= 1 and config.read_timeout <= 1


def test_token_check_reads_the_base_table_consistently(authorizer_app):
    token = mint(["reports:read"])
    client = authorizer_app.authorizer.repository.client
    item = client.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": f"TOKEN#{token[4:20]}"}, "sk": {"S": "TOKEN"}}
    )["Item"]
    item["last_used_at"] = {"N": str(int(time.time()))}  # fresh: no last-use write expected
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_item",
            {"Item": item},
            expected_params={
                "TableName": os.environ["TABLE_NAME"],
                "Key": {"pk": {"S": f"TOKEN#{token[4:20]}"}, "sk": {"S": "TOKEN"}},
                "ConsistentRead": True,
                # Only what the decision uses: no name, other metadata or index keys.
                "ProjectionExpression": "token_id, org_id, owner_id, scopes, expires_at, secret_hash, "
                "hash_version, created_at, revoked_at, disabled_at, last_used_at, unused_after_days, allowed_cidrs",
            },
        )
        result = authorize(authorizer_app, token_event(token))
        stubber.assert_no_pending_responses()
    assert policy_allows(result, f"{METHOD_ARN_PREFIX}/GET/v1/reports")


# -- last use -----------------------------------------------------------------------------


def test_last_use_is_recorded_at_most_once_per_ten_minutes(authorizer_app, monkeypatch):
    token = mint(["reports:read"])
    now = [time.time()]
    authorizer_app.authorizer.clock = lambda: now[0]
    client = authorizer_app.authorizer.repository.client
    writes: list[dict[str, Any]] = []
    original = client.update_item

    def counting_update(**kwargs: Any) -> Any:
        writes.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(client, "update_item", counting_update)
    authorize(authorizer_app, request_event(token, "GET", "/v1/reports"))
    assert len(writes) == 1
    now[0] += 300
    authorize(authorizer_app, request_event(token, "GET", "/v1/reports"))
    assert len(writes) == 1, "a fresh record must not cost a second round trip"
    now[0] += 301
    authorize(authorizer_app, request_event(token, "GET", "/v1/reports"))
    assert len(writes) == 2
    record = wiring.get_service().repository.get_token(token[4:20])
    assert record is not None and record.last_used_at == int(now[0])


def test_a_failed_last_use_write_does_not_change_the_decision(authorizer_app):
    token = mint(["reports:read"])
    client = authorizer_app.authorizer.repository.client
    item = client.get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": f"TOKEN#{token[4:20]}"}, "sk": {"S": "TOKEN"}}
    )["Item"]
    with Stubber(client) as stubber:
        stubber.add_response("get_item", {"Item": item})
        stubber.add_client_error("update_item", service_error_code="ThrottlingException", http_status_code=400)
        result = authorize(authorizer_app, token_event(token))
    assert policy_allows(result, f"{METHOD_ARN_PREFIX}/GET/v1/reports")


def test_last_use_is_visible_in_the_console(authorizer_app, member):
    token = mint(["reports:read"])
    authorize(authorizer_app, request_event(token, "GET", "/v1/reports"))
    listed = member.request("GET", f"/tokens/{token[4:20]}").json()
    assert listed["last_used_at"] is not None
    assert listed["last_used_ip"] == "203.0.113.10"


# -- logs and metrics ------------------------------------------------------------------------


def test_one_structured_log_line_per_decision_and_never_the_token(authorizer_app, service_log, capsys):
    token = mint(["reports:read"])
    authorize(authorizer_app, token_event(token))
    with pytest.raises(Exception, match="Unauthorized"):
        authorize(authorizer_app, token_event(with_other_secret(token)))
    output = service_log.getvalue() + capsys.readouterr().out
    assert not TOKEN_PATTERN.search(output)
    assert token[20:48] not in output
    assert "Bearer" not in output
    decisions = [json.loads(line) for line in output.splitlines() if "Authorization decision" in line]
    decisions = decisions[: len(decisions) // 2]  # each line appears in the log capture and on stdout
    assert [(line["decision"], line["reason"]) for line in decisions] == [
        ("allow", "allowed"),
        ("deny", "wrong_secret"),
    ]
    assert all(line["token_id"] == token[4:20] and line["request_id"] for line in decisions)
    # Each line is also the decision's metric (CloudWatch embedded metric format).
    assert [(line.get("Allowed"), line.get("Denied")) for line in decisions] == [(1, None), (None, 1)]
    for line in decisions:
        (directive,) = line["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "ApiTokens"
        assert directive["Dimensions"] == [["service", "reason"]]
        assert directive["Metrics"][0]["Name"] in line


# -- revocation takes effect at once: authorizer cache flush --------------------------------


REST_STAGE = {"restApiId": "a1b2c3d4e5", "stageName": "dev"}
HTTP_STAGE = {"ApiId": "h77p9x", "StageName": "$default"}


def second_flushes(fake: Any) -> list[dict[str, Any]]:
    return [message for message in fake.queued if message["DelaySeconds"] > 0]


def test_every_kind_of_revoke_flushes_every_protected_api_now_and_after_the_authorizer_timeout(
    authorizer_app, member, fake_apigateway
):
    first, second, third = (member.create_ok()["token_id"] for _ in range(3))
    member.request("DELETE", f"/tokens/{first}")
    assert (fake_apigateway.flushes, fake_apigateway.resets) == ([REST_STAGE], [HTTP_STAGE])
    # A check that read the token before the revoke may cache its allow after that flush:
    # a second one, once the authorizer's timeout (5 s) has passed, closes the race.
    assert fake_apigateway.queued == [
        {
            "QueueUrl": FLUSH_QUEUE_URL,
            "DelaySeconds": 5,
            "MessageBody": {"stages": ["restapis/a1b2c3d4e5/stages/dev", "apis/h77p9x/stages/$default"]},
        }
    ]
    member.request("DELETE", f"/tokens/{first}")  # already revoked: nothing to flush
    assert len(fake_apigateway.flushes) == 1 and len(fake_apigateway.queued) == 1
    member.request("POST", "/tokens/revoke", body={"token_ids": [second, third]})
    assert len(fake_apigateway.flushes) == len(fake_apigateway.resets) == len(second_flushes(fake_apigateway)) == 2


def test_a_failed_flush_does_not_fail_the_revoke_and_is_queued_for_retry(authorizer_app, member, fake_apigateway):
    fake_apigateway.failing = {"FlushStageAuthorizersCache"}
    token_id = member.create_ok()["token_id"]
    response = member.request("DELETE", f"/tokens/{token_id}")
    assert response.status == 200 and response.json()["status"] == "revoked"
    retry, later = fake_apigateway.queued
    assert (retry["DelaySeconds"], retry["MessageBody"]) == (0, {"stages": ["restapis/a1b2c3d4e5/stages/dev"]})
    assert later["DelaySeconds"] == 5 and fake_apigateway.resets == [HTTP_STAGE]


def test_a_flush_that_cannot_even_be_queued_is_an_error_an_operator_sees(
    authorizer_app, member, fake_apigateway, captured_logs
):
    fake_apigateway.failing = {"FlushStageAuthorizersCache", "SendMessage"}
    token_id = member.create_ok()["token_id"]
    assert member.request("DELETE", f"/tokens/{token_id}").status == 200
    output = captured_logs()
    assert "Authorizer cache flush could not be queued" in output
    assert '"AuthorizerCacheFlushFailed"' in output  # the metric the alarm watches


# -- self-service endpoints behind the authorizer ------------------------------------------


def test_a_token_reads_and_revokes_itself(authorizer_app, fake_apigateway):
    token = mint(["reports:read"])
    context = authorize(authorizer_app, token_event(token, "GET", "v1/token"))["context"]
    status, body = call_self_service(self_service_event("GET", copy.deepcopy(context)))
    assert status == 200
    assert body["token_id"] == token[4:20] and body["org_id"] == "org-acme" and body["scopes"] == ["reports:read"]
    assert "token" not in body and not TOKEN_PATTERN.search(json.dumps(body))

    status, body = call_self_service(self_service_event("DELETE", context))
    assert status == 200 and body["status"] == "revoked" and body["revoked_by"] == f"token:{token[4:20]}"
    assert (fake_apigateway.flushes, fake_apigateway.resets) == ([REST_STAGE], [HTTP_STAGE])
    with pytest.raises(Exception, match="Unauthorized"):
        authorize(authorizer_app, token_event(token, "GET", "v1/token"))


def test_self_service_without_authorizer_context_is_401(authorizer_app):
    status, body = call_self_service(self_service_event("GET", {}))
    assert status == 401 and body["error"]["code"] == "not_authenticated"


# -- template and imports ----------------------------------------------------------------------


def test_gateway_responses_follow_rfc_6750():
    responses = load_template()["Resources"]["TokenApi"]["Properties"]["GatewayResponses"]
    assert responses["UNAUTHORIZED"]["StatusCode"] == "401"
    assert (
        responses["UNAUTHORIZED"]["ResponseParameters"]["Headers"]["WWW-Authenticate"]
        == '\'Bearer realm="api-tokens", error="invalid_token"\''
    )
    assert responses["ACCESS_DENIED"]["StatusCode"] == "403"
    assert (
        responses["ACCESS_DENIED"]["ResponseParameters"]["Headers"]["WWW-Authenticate"]
        == '\'Bearer realm="api-tokens", error="insufficient_scope"\''
    )
    for response in responses.values():  # JSON once API Gateway has filled in its variables
        template = response["ResponseTemplates"]["application/json"]
        filled = template.replace("$context.error.messageString", '"Forbidden"')
        error = json.loads(filled.replace("$context.error.responseType", "ACCESS_DENIED"))["error"]
        assert set(error) == {"code", "message"}


def test_the_authorizer_imports_no_validation_openapi_or_powertools_machinery():
    probe = (
        "import sys; sys.path.insert(0, 'functions/authorizer'); import app; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'aws_lambda_powertools', "
        "'aws_xray_sdk') or 'openapi' in m]; print(heavy)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "layers" / "tokens")}
    output = subprocess.run(  # noqa: S603
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
