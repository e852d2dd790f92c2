"""Membership changes reach tokens: a user deleted, disabled, moved to another organisation or
given another role in the user pool (Cognito's admin calls, through CloudTrail and EventBridge),
or reported by an admin (PUT /members/{user_id}), keeps only what the new role may grant."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from support import Console, FakeApiGateway, FakeClock, RecordingPublisher

from devserver.gateway import Identity, LambdaContext, load_handler_module
from devserver.template import ROOT
from token_service.domain.authorizer import Reason

MEMBER_SCOPES = ["import:builds", "reports:read"]


def decide(authorizer_app: Any, secret: str, method: str, path: str) -> Reason:
    return authorizer_app.authorizer.decide(f"Bearer {secret}", method, path).reason


def tokens_of(console: Console) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in console.request("GET", "/tokens").json()["items"]}


# -- the admin endpoint (identity providers that send no events) --------------------------------


def test_a_lowered_role_trims_scopes_and_revokes_tokens_left_with_none(
    fake_apigateway: FakeApiGateway,
    admin: Console,
    member: Console,
    clock: FakeClock,
    authorizer_app: Any,
    lifecycle_events: RecordingPublisher,
) -> None:
    mixed = member.create_ok("mixed", MEMBER_SCOPES)
    builds_only = member.create_ok("builds only", ["import:builds"])
    authorizer_app.authorizer.clock = clock
    assert decide(authorizer_app, mixed["token"], "POST", "/v1/import/builds") is Reason.ALLOWED
    flushes = len(fake_apigateway.flushes)
    response = admin.request("PUT", "/members/user-member", body={"role": "viewer"})
    assert response.status == 200, response.body
    assert response.json() == {"user_id": "user-member", "role": "viewer", "revoked": 1, "trimmed": 1}
    now = tokens_of(member)
    assert now["mixed"]["scopes"] == ["reports:read"] and now["mixed"]["status"] == "active"
    assert now["builds only"]["status"] == "revoked" and now["builds only"]["revoked_by"] == "membership:role"
    assert decide(authorizer_app, mixed["token"], "POST", "/v1/import/builds") is Reason.INSUFFICIENT_SCOPE
    assert decide(authorizer_app, mixed["token"], "GET", "/v1/reports") is Reason.ALLOWED
    assert decide(authorizer_app, builds_only["token"], "GET", "/v1/reports") is Reason.REVOKED
    assert len(fake_apigateway.flushes) > flushes  # no cached allow keeps the old scopes
    revoked = [sent for sent in lifecycle_events.sent if sent.detail_type == "TokenRevoked"]
    assert [sent.detail["kind"] for sent in revoked] == ["membership"]
    # Repeating it changes nothing more.
    again = admin.request("PUT", "/members/user-member", body={"role": "viewer"}).json()
    assert (again["revoked"], again["trimmed"]) == (0, 0)


def test_a_user_who_left_loses_every_token(admin: Console, member: Console, clock: FakeClock) -> None:
    for name in ("one", "two"):
        member.create_ok(name, MEMBER_SCOPES)
    response = admin.request("PUT", "/members/user-member", body={"role": None})
    assert response.status == 200 and response.json()["revoked"] == 2
    assert {item["revoked_by"] for item in tokens_of(member).values()} == {"membership:left"}


@pytest.mark.parametrize(
    ("caller", "path", "body", "status", "field"),
    [
        ("member", "/members/user-member-2", {"role": None}, 403, None),
        ("admin", "/members/user-member", {"role": "superuser"}, 400, "role"),
        ("admin", "/members/user-member", {}, 400, "role"),
        ("admin", "/members/bad%23id", {"role": None}, 400, None),
    ],
)
def test_only_admins_report_membership_changes_and_bad_input_is_named(
    consoles: dict[str, Console],
    other_member: Console,
    clock: FakeClock,
    caller: str,
    path: str,
    body: dict[str, Any],
    status: int,
    field: str | None,
) -> None:
    other_member.create_ok("colleague's", MEMBER_SCOPES)
    response = consoles[caller].request("PUT", path, body=body)
    assert response.status == status, response.body
    if field:
        assert field in {problem["field"] for problem in response.json()["error"]["fields"]}
    assert tokens_of(other_member)["colleague's"]["status"] == "active"


def test_another_organisations_admin_cannot_touch_these_tokens(
    outsider_admin: Console, member: Console, clock: FakeClock
) -> None:
    member.create_ok("mine", MEMBER_SCOPES)
    response = outsider_admin.request("PUT", "/members/user-member", body={"role": None})
    assert response.status == 200 and response.json()["revoked"] == 0  # their organisation has none
    assert tokens_of(member)["mine"]["status"] == "active"


# -- Cognito's admin calls, as CloudTrail delivers them through EventBridge ---------------------


@pytest.fixture
def user_pool(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A moto user pool with two users of org-acme (a member and an admin), as the template
    defines its custom attributes."""
    cognito = boto3.client("cognito-idp", region_name="us-east-1")
    pool_id = cognito.create_user_pool(
        PoolName="api-tokens-test",
        Schema=[
            {"Name": "org_id", "AttributeDataType": "String", "Mutable": True},
            {"Name": "role", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]["Id"]
    users = {}
    for username, role in (("ada@example.com", "member"), ("grace@example.com", "admin")):
        created = cognito.admin_create_user(
            UserPoolId=pool_id,
            Username=username,
            UserAttributes=[
                {"Name": "custom:org_id", "Value": "org-acme"},
                {"Name": "custom:role", "Value": role},
            ],
        )["User"]
        sub = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
        users[username] = Console(Identity(user_id=sub, org_id="org-acme", role=role))
    monkeypatch.setenv("USER_POOL_ID", pool_id)
    return {"client": cognito, "pool_id": pool_id, "users": users}


def cloudtrail_event(event_name: str, pool_id: str, **detail: Any) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / "membership_cloudtrail.json").read_text())
    event["detail"]["eventName"] = event_name
    event["detail"]["requestParameters"]["userPoolId"] = pool_id
    event["detail"].update(detail)
    return event


def deliver(event: dict[str, Any]) -> dict[str, int]:
    module = load_handler_module(ROOT / "functions" / "membership", "app.lambda_handler")
    result: dict[str, int] = module.lambda_handler(event, LambdaContext(function_name="MembershipFunction"))
    return result


@pytest.mark.parametrize(
    ("change", "event_name", "expected"),
    [
        ("role", "AdminUpdateUserAttributes", {"mixed": ("active", ["reports:read"]), "builds": ("revoked", None)}),
        ("org", "AdminUpdateUserAttributes", {"mixed": ("revoked", None), "builds": ("revoked", None)}),
        ("disable", "AdminDisableUser", {"mixed": ("revoked", None), "builds": ("revoked", None)}),
        ("delete", "AdminDeleteUser", {"mixed": ("revoked", None), "builds": ("revoked", None)}),
    ],
)
def test_cognito_admin_calls_reach_the_users_tokens(
    user_pool: dict[str, Any], clock: FakeClock, change: str, event_name: str, expected: dict[str, Any]
) -> None:
    cognito, pool_id = user_pool["client"], user_pool["pool_id"]
    ada, grace = user_pool["users"]["ada@example.com"], user_pool["users"]["grace@example.com"]
    ada.create_ok("mixed", MEMBER_SCOPES)
    ada.create_ok("builds", ["import:builds"])
    admins_own = grace.create_ok("admin's", ["import:teams"])
    if change == "role":
        attributes = [{"Name": "custom:role", "Value": "viewer"}]
        cognito.admin_update_user_attributes(UserPoolId=pool_id, Username="ada@example.com", UserAttributes=attributes)
    elif change == "org":
        attributes = [{"Name": "custom:org_id", "Value": "org-globex"}]
        cognito.admin_update_user_attributes(UserPoolId=pool_id, Username="ada@example.com", UserAttributes=attributes)
    elif change == "disable":
        cognito.admin_disable_user(UserPoolId=pool_id, Username="ada@example.com")
    else:
        cognito.admin_delete_user(UserPoolId=pool_id, Username="ada@example.com")
    result = deliver(cloudtrail_event(event_name, pool_id))
    assert result["changed"] == 1
    tokens = tokens_of(ada)
    for name, (status, scopes) in expected.items():
        assert tokens[name]["status"] == status, name
        if scopes is not None:
            assert tokens[name]["scopes"] == scopes
        else:
            assert tokens[name]["revoked_by"].startswith("membership:")
    assert grace.request("GET", f"/tokens/{admins_own['token_id']}").json()["status"] == "active"
    assert deliver(cloudtrail_event(event_name, pool_id)) == {"changed": 0, "revoked": 0, "trimmed": 0}


@pytest.mark.parametrize(
    "detail",
    [
        {"eventName": "AdminGetUser"},
        {"requestParameters": {"userPoolId": "us-east-1_someoneElse"}},
        {"errorCode": "UserNotFoundException"},
    ],
)
def test_other_calls_and_other_pools_change_nothing(
    user_pool: dict[str, Any], clock: FakeClock, detail: dict[str, Any]
) -> None:
    cognito, pool_id = user_pool["client"], user_pool["pool_id"]
    ada = user_pool["users"]["ada@example.com"]
    ada.create_ok("mixed", MEMBER_SCOPES)
    cognito.admin_disable_user(UserPoolId=pool_id, Username="ada@example.com")
    event = cloudtrail_event("AdminDisableUser", pool_id)
    event["detail"].update(detail)
    assert deliver(event)["changed"] == 0
    assert tokens_of(ada)["mixed"]["status"] == "active"
