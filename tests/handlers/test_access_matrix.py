"""Who may do what to which token: role x ownership x operation, through the real handlers.

Rules under test:
* admins act on every token of their own organisation;
* members and viewers act on their own tokens only: another user's token answers 404 (get,
  revoke) or ``not_found`` (bulk), listing another user / the organisation and the bulk
  owner/organisation modes answer 403;
* another organisation's tokens are always invisible (404 / not_found / absent from lists),
  even for admins, and are never modified;
* the caller is whoever the authorizer's claims say, whatever headers, query or body claim.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from support import TARGETS, AccessWorld

from devserver.gateway import console_request
from token_service import wiring
from token_service.domain.identity import Caller

TABLE_NAME = os.environ["TABLE_NAME"]
ORG = "org-acme"
OTHER_ORG = "org-globex"
Console = Any  # tests/conftest.py's Console: .identity, .request(), .create_ok()

CALLERS = ["admin", "member", "viewer", "outsider_admin"]
MATRIX = pytest.mark.parametrize(
    ("caller_name", "target"), [(caller, target) for caller in CALLERS for target in TARGETS]
)

# Token owners besides the callers themselves: another user of the caller's organisation,
# and a user of the other organisation.


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status == status, response.body
    assert response.json()["error"]["code"] == code


# -- single token -------------------------------------------------------------------------


@MATRIX
def test_get_token(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("GET", f"/tokens/{access_world.token_id[target]}")

    if access_world.may_act_on(target):
        assert response.status == 200, response.body
        assert response.json()["token_id"] == access_world.token_id[target]
        assert response.json()["owner_id"] == access_world.owner[target]
    else:
        assert (response.status, response.headers, response.json()) == access_world.nonexistent_answer("GET")
        assert response.status == 404
    access_world.assert_state(revoked=set())


@pytest.mark.dynamodb_backends
@MATRIX
def test_revoke_single_token(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("DELETE", f"/tokens/{access_world.token_id[target]}")

    if access_world.may_act_on(target):
        assert response.status == 200, response.body
        assert response.json()["status"] == "revoked"
        assert response.json()["revoked_by"] == access_world.caller.user_id
        access_world.assert_state(revoked={target})
    else:
        assert (response.status, response.headers, response.json()) == access_world.nonexistent_answer("DELETE")
        assert response.status == 404
        access_world.assert_state(revoked=set())


@pytest.mark.dynamodb_backends
@MATRIX
def test_already_revoked_tokens_are_just_as_invisible(access_world: AccessWorld, caller_name: str, target: str) -> None:
    """A failed conditional revoke reads the old item back: it must not leak it either."""
    token_id = access_world.token_id[target]
    owner = Caller(access_world.owner[target], str(access_world.before[target]["org_id"]), "member")
    wiring.get_service().revoke_token(owner, token_id)
    revoked_item = access_world.item(target)

    single = access_world.console.request("DELETE", f"/tokens/{token_id}")
    many = access_world.console.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})
    read = access_world.console.request("GET", f"/tokens/{token_id}")

    if access_world.may_act_on(target):
        assert single.status == read.status == 200
        assert single.json() == read.json()
        assert single.json()["revoked_by"] == access_world.owner[target]
        assert many.json()["results"] == [{"token_id": token_id, "result": "already_revoked"}]
    else:
        assert (single.status, single.headers, single.json()) == access_world.nonexistent_answer("DELETE")
        assert (read.status, read.headers, read.json()) == access_world.nonexistent_answer("GET")
        assert many.json()["results"] == [{"token_id": token_id, "result": "not_found"}]
    assert access_world.item(target) == revoked_item


# -- listing ------------------------------------------------------------------------------


@MATRIX
def test_list_by_owner(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("GET", "/tokens", query={"owner_id": access_world.owner[target]})

    if target == "own" or access_world.is_admin:
        assert response.status == 200, response.body
        listed = {item["token_id"] for item in response.json()["items"]}
        if target == "other_org":
            # owner_id is read inside the caller's organisation: the namesake there has no tokens.
            assert listed == set()
        else:
            assert listed == {access_world.token_id[target]}
    else:
        assert_error(response, 403, "forbidden")
    access_world.assert_state(revoked=set())


@MATRIX
def test_list_all_users(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("GET", "/tokens", query={"all_users": "true"})

    if access_world.is_admin:
        assert response.status == 200, response.body
        listed = {item["token_id"] for item in response.json()["items"]}
        assert listed == {access_world.token_id["own"], access_world.token_id["same_org"]}
        assert (access_world.token_id[target] in listed) is (target != "other_org")
    else:
        assert_error(response, 403, "forbidden")
    access_world.assert_state(revoked=set())


# -- bulk revoke --------------------------------------------------------------------------


@pytest.mark.dynamodb_backends
@MATRIX
def test_bulk_revoke_by_ids(access_world: AccessWorld, caller_name: str, target: str) -> None:
    token_id = access_world.token_id[target]
    response = access_world.console.request("POST", "/tokens/revoke", body={"token_ids": [token_id]})

    assert response.status == 200, response.body
    body = response.json()
    if access_world.may_act_on(target):
        assert body["results"] == [{"token_id": token_id, "result": "revoked"}]
        assert (body["revoked"], body["already_revoked"], body["not_found"]) == (1, 0, 0)
        access_world.assert_state(revoked={target})
    else:
        assert body["results"] == [{"token_id": token_id, "result": "not_found"}]
        assert (body["revoked"], body["already_revoked"], body["not_found"]) == (0, 0, 1)
        access_world.assert_state(revoked=set())


@MATRIX
def test_bulk_revoke_by_owner(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("POST", "/tokens/revoke", body={"owner_id": access_world.owner[target]})

    if target == "own" or access_world.is_admin:
        assert response.status == 200, response.body
        body = response.json()
        if target == "other_org":
            assert body["results"] == []
            assert body["revoked"] == 0
            access_world.assert_state(revoked=set())
        else:
            assert body["results"] == [{"token_id": access_world.token_id[target], "result": "revoked"}]
            access_world.assert_state(revoked={target})
    else:
        assert_error(response, 403, "forbidden")
        access_world.assert_state(revoked=set())


@MATRIX
def test_bulk_revoke_organisation(access_world: AccessWorld, caller_name: str, target: str) -> None:
    response = access_world.console.request("POST", "/tokens/revoke", body={"organisation": True})

    if access_world.is_admin:
        assert response.status == 200, response.body
        results = {result["token_id"]: result["result"] for result in response.json()["results"]}
        assert results == {access_world.token_id["own"]: "revoked", access_world.token_id["same_org"]: "revoked"}
        assert (access_world.token_id[target] in results) is (target != "other_org")
        access_world.assert_state(revoked={"own", "same_org"})
    else:
        assert_error(response, 403, "forbidden")
        access_world.assert_state(revoked=set())


# -- identity comes from the claims only --------------------------------------------------

SPOOFED_HEADERS = [
    {"X-Org-Id": OTHER_ORG},
    {"X-User-Id": "user-admin"},
    {"X-Role": "admin"},
    {
        "X-Org-Id": ORG,
        "X-User-Id": "user-admin",
        "X-Role": "admin",
        "X-Amzn-Oidc-Identity": "user-admin",
        "X-Forwarded-User": "user-admin",
        "custom:org_id": OTHER_ORG,
        "custom:role": "admin",
        "sub": "user-admin",
    },
]


@pytest.mark.parametrize("headers", SPOOFED_HEADERS)
def test_identity_headers_do_not_change_the_member(
    member: Console, admin: Console, colleague_token: dict[str, Any], headers: dict[str, str]
) -> None:
    colleague_id = colleague_token["token_id"]

    created = member.request("POST", "/tokens", body={"name": "mine", "scopes": ["reports:read"]}, headers=headers)
    assert created.status == 201, created.body
    assert created.json()["owner_id"] == "user-member"
    assert created.json()["created_by"] == "user-member"

    assert_error(member.request("GET", f"/tokens/{colleague_id}", headers=headers), 404, "not_found")
    assert_error(member.request("DELETE", f"/tokens/{colleague_id}", headers=headers), 404, "not_found")
    assert_error(member.request("GET", "/tokens", query={"all_users": "true"}, headers=headers), 403, "forbidden")
    assert_error(
        member.request("POST", "/tokens/revoke", body={"organisation": True}, headers=headers),
        403,
        "forbidden",
    )
    own = member.request("GET", "/tokens", headers=headers)
    assert [item["token_id"] for item in own.json()["items"]] == [created.json()["token_id"]]

    colleague = admin.request("GET", f"/tokens/{colleague_id}")
    assert colleague.json()["status"] == "active"


@pytest.mark.parametrize("headers", SPOOFED_HEADERS)
def test_identity_headers_do_not_let_an_outsider_into_another_org(
    outsider_admin: Console, member: Console, headers: dict[str, str]
) -> None:
    token = member.create_ok()
    headers = {**headers, "X-Org-Id": ORG}

    assert_error(outsider_admin.request("GET", f"/tokens/{token['token_id']}", headers=headers), 404, "not_found")
    assert_error(outsider_admin.request("DELETE", f"/tokens/{token['token_id']}", headers=headers), 404, "not_found")
    org_wide = outsider_admin.request("GET", "/tokens", query={"all_users": "true"}, headers=headers)
    assert org_wide.status == 200
    assert org_wide.json()["items"] == []
    bulk = outsider_admin.request("POST", "/tokens/revoke", body={"organisation": True}, headers=headers)
    assert bulk.json()["results"] == []

    assert member.request("GET", f"/tokens/{token['token_id']}").json()["status"] == "active"


def test_identity_query_parameters_are_ignored(member: Console, other_member: Console) -> None:
    mine = member.create_ok()
    other_member.create_ok()

    response = member.request(
        "GET", "/tokens", query={"org_id": OTHER_ORG, "user_id": "user-member-2", "role": "admin", "sub": "x"}
    )

    assert response.status == 200, response.body
    assert [item["token_id"] for item in response.json()["items"]] == [mine["token_id"]]


@pytest.mark.parametrize(
    "extra",
    [
        {"owner_id": "user-admin"},
        {"org_id": OTHER_ORG},
        {"created_by": "user-admin"},
        {"user_id": "user-admin"},
        {"role": "admin"},
    ],
)
def test_identity_fields_in_the_create_body_are_refused(member: Console, admin: Console, extra: dict[str, str]) -> None:
    response = member.request("POST", "/tokens", body={"name": "x", "scopes": ["reports:read"], **extra})

    assert_error(response, 400, "invalid_request")
    assert [problem["field"] for problem in response.json()["error"]["fields"]] == list(extra)
    assert admin.request("GET", "/tokens", query={"all_users": "true"}).json()["items"] == []


@pytest.mark.parametrize("extra", [{"org_id": ORG}, {"user_id": "user-admin"}, {"role": "admin"}])
def test_identity_fields_in_the_bulk_body_are_refused(
    member: Console, other_member: Console, extra: dict[str, str]
) -> None:
    colleague = other_member.create_ok()

    response = member.request("POST", "/tokens/revoke", body={"token_ids": [colleague["token_id"]], **extra})

    assert_error(response, 400, "invalid_request")
    assert other_member.request("GET", f"/tokens/{colleague['token_id']}").json()["status"] == "active"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/tokens"), ("POST", "/tokens"), ("GET", "/tokens/0123456789abcdef"), ("POST", "/tokens/revoke")],
)
def test_no_claims_no_access(dynamodb: Any, method: str, path: str) -> None:
    bodies = {"/tokens": {"name": "x", "scopes": ["reports:read"]}, "/tokens/revoke": {"organisation": True}}
    body = bodies.get(path) if method == "POST" else None
    headers = {"X-Org-Id": ORG, "X-User-Id": "user-admin", "X-Role": "admin"}

    response = console_request(None, method, path, body=body, headers=headers)

    assert_error(response, 401, "not_authenticated")
