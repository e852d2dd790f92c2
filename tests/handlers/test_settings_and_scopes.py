"""GET /scopes, GET and PUT /settings, and create obeying a changed organisation policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from support import ORG, Console, assert_invalid, field_problems

from devserver.gateway import HttpResponse, Identity, console_request
from token_service import wiring

NOW = datetime(2030, 3, 15, 10, 30, tzinfo=UTC)
pytestmark = [pytest.mark.dynamodb_backends, pytest.mark.clock_at(NOW), pytest.mark.usefixtures("clock")]
DEFAULTS = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 50}
UNCHANGED = {**DEFAULTS, "revoke_unused_after_days": None, "updated_at": None, "updated_by": None}
CATALOG = json.loads(resources.files("token_service.domain").joinpath("scope_catalog.json").read_text(encoding="utf-8"))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy(**changes: object) -> dict[str, object]:
    return {**DEFAULTS, **changes}


def put_settings(console: Console, body: object) -> HttpResponse:
    return console.request("PUT", "/settings", body=body)


def get_settings(console: Console) -> dict[str, Any]:
    response = console.request("GET", "/settings")
    assert response.status == 200, response.body
    return response.json()


# -- GET /scopes --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_scopes_lists_exactly_what_the_role_may_grant(consoles: dict[str, Console], role: str) -> None:
    response = consoles[role].request("GET", "/scopes")

    assert response.status == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["role"] == role
    assert [scope["name"] for scope in body["scopes"]] == CATALOG["roles"][role]["scopes"]
    for scope in body["scopes"]:
        assert scope["description"] == CATALOG["scopes"][scope["name"]]
        assert scope["description"].strip()


def test_scope_lists_differ_by_role(consoles: dict[str, Console]) -> None:
    names = {
        role: {scope["name"] for scope in console.request("GET", "/scopes").json()["scopes"]}
        for role, console in consoles.items()
    }
    assert names["viewer"] < names["member"] < names["admin"]
    assert "import:teams" in names["admin"] - names["member"]
    assert "import:builds" in names["member"] - names["viewer"]


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_every_listed_scope_can_actually_be_granted(consoles: dict[str, Console], role: str) -> None:
    console = consoles[role]
    names = [scope["name"] for scope in console.request("GET", "/scopes").json()["scopes"]]
    assert sorted(console.create_ok(scopes=names)["scopes"]) == sorted(names)


def test_scopes_needs_an_identity_and_a_known_role(dynamodb: object) -> None:
    assert console_request(None, "GET", "/scopes").status == 401
    stranger = Console(Identity(user_id="user-x", org_id=ORG, role="auditor"))
    response = stranger.request("GET", "/scopes")
    assert response.status == 403
    assert response.json()["error"]["code"] == "forbidden"


# -- GET /settings ------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
def test_default_settings_are_visible_to_every_role(consoles: dict[str, Console], role: str) -> None:
    response = consoles[role].request("GET", "/settings")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == UNCHANGED


def test_settings_need_an_identity_and_a_known_role(dynamodb: object) -> None:
    assert console_request(None, "GET", "/settings").status == 401
    assert console_request(None, "PUT", "/settings", body=policy(max_active_tokens_per_user=1)).status == 401
    stranger = Console(Identity(user_id="user-x", org_id=ORG, role="auditor"))
    assert stranger.request("GET", "/settings").status == 403


# -- PUT /settings ------------------------------------------------------------------------


def test_admin_changes_the_policy_and_everyone_sees_it(consoles: dict[str, Console]) -> None:
    new = {"max_lifetime_days": 30, "default_lifetime_days": 7, "max_active_tokens_per_user": 5}
    response = put_settings(consoles["admin"], new)

    assert response.status == 200, response.body
    expected = {**new, "revoke_unused_after_days": None, "updated_at": iso(NOW), "updated_by": "user-admin"}
    assert response.json() == expected
    for console in consoles.values():
        assert get_settings(console) == expected


def test_policy_can_be_changed_again(admin: Console) -> None:
    assert put_settings(admin, policy(max_lifetime_days=30, default_lifetime_days=30)).status == 200
    assert put_settings(admin, policy()).status == 200
    assert {key: get_settings(admin)[key] for key in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_admins_may_change_the_policy(consoles: dict[str, Console], role: str) -> None:
    response = put_settings(consoles[role], policy(max_active_tokens_per_user=1000))
    assert response.status == 403, response.body
    assert response.json()["error"]["code"] == "forbidden"
    assert get_settings(consoles["admin"]) == UNCHANGED


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"max_lifetime_days": 0}, "max_lifetime_days", id="max-zero"),
        pytest.param({"max_lifetime_days": -1}, "max_lifetime_days", id="max-negative"),
        pytest.param({"max_lifetime_days": 3651}, "max_lifetime_days", id="max-too-large"),
        pytest.param({"max_lifetime_days": 10**30}, "max_lifetime_days", id="max-huge"),
        pytest.param({"max_lifetime_days": "366"}, "max_lifetime_days", id="max-string"),
        pytest.param({"max_lifetime_days": 30.5}, "max_lifetime_days", id="max-fraction"),
        pytest.param({"max_lifetime_days": True}, "max_lifetime_days", id="max-bool"),
        pytest.param({"max_lifetime_days": None}, "max_lifetime_days", id="max-null"),
        pytest.param({"default_lifetime_days": 0}, "default_lifetime_days", id="default-zero"),
        pytest.param({"default_lifetime_days": -90}, "default_lifetime_days", id="default-negative"),
        pytest.param({"default_lifetime_days": "90"}, "default_lifetime_days", id="default-string"),
        pytest.param({"default_lifetime_days": False}, "default_lifetime_days", id="default-bool"),
        pytest.param({"default_lifetime_days": 367}, "default_lifetime_days", id="default-above-max"),
        pytest.param(
            {"max_lifetime_days": 30, "default_lifetime_days": 90}, "default_lifetime_days", id="max-below-default"
        ),
        pytest.param({"max_active_tokens_per_user": 0}, "max_active_tokens_per_user", id="cap-zero"),
        pytest.param({"max_active_tokens_per_user": -5}, "max_active_tokens_per_user", id="cap-negative"),
        pytest.param({"max_active_tokens_per_user": 1001}, "max_active_tokens_per_user", id="cap-too-large"),
        pytest.param({"max_active_tokens_per_user": "50"}, "max_active_tokens_per_user", id="cap-string"),
        pytest.param({"max_active_tokens_per_user": True}, "max_active_tokens_per_user", id="cap-bool"),
        pytest.param({"org_id": "org-globex"}, "org_id", id="unknown-org_id"),
        pytest.param({"updated_by": "someone"}, "updated_by", id="unknown-updated_by"),
    ],
)
def test_invalid_policy_is_rejected_and_nothing_changes(admin: Console, values: dict[str, object], field: str) -> None:
    assert_invalid(put_settings(admin, policy(**values)), field)
    assert get_settings(admin) == UNCHANGED


def test_integral_floats_are_integers_as_json_schema_says(admin: Console) -> None:
    """366.0 is an integer to JSON Schema (and to the OpenAPI document); 30.5 is not (above)."""
    body = {"max_lifetime_days": 366.0, "default_lifetime_days": 90.0, "max_active_tokens_per_user": 5.0}
    response = put_settings(admin, {**body, "revoke_unused_after_days": 30.0})
    assert response.status == 200, response.body
    assert {key: get_settings(admin)[key] for key in (*body, "revoke_unused_after_days")} == {
        "max_lifetime_days": 366,
        "default_lifetime_days": 90,
        "max_active_tokens_per_user": 5,
        "revoke_unused_after_days": 30,
    }


def test_default_above_max_names_default_lifetime_days(admin: Console) -> None:
    response = put_settings(admin, policy(max_lifetime_days=30, default_lifetime_days=31))
    assert field_problems(response) == {"default_lifetime_days": "must not exceed max_lifetime_days"}


@pytest.mark.parametrize("missing", sorted(DEFAULTS))
def test_every_policy_field_is_required(admin: Console, missing: str) -> None:
    body = {key: value for key, value in DEFAULTS.items() if key != missing}
    assert assert_invalid(put_settings(admin, body), missing) == "is required"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{", id="malformed"),
        pytest.param("null", id="null"),
        pytest.param("[]", id="empty-array"),
        # BUG (as in POST /tokens): a one-element array is unwrapped and accepted.
        pytest.param(json.dumps([policy(max_lifetime_days=30, default_lifetime_days=7)]), id="array-of-policy"),
    ],
)
def test_malformed_policy_body_is_rejected(admin: Console, raw: str) -> None:
    response = put_settings(admin, raw)
    assert response.status == 400, response.body
    assert get_settings(admin)["max_lifetime_days"] == DEFAULTS["max_lifetime_days"]


def test_the_limits_themselves_are_accepted(admin: Console) -> None:
    limits = {"max_lifetime_days": 3650, "default_lifetime_days": 3650, "max_active_tokens_per_user": 1000}
    assert put_settings(admin, limits).status == 200
    minimal = {"max_lifetime_days": 1, "default_lifetime_days": 1, "max_active_tokens_per_user": 1}
    assert put_settings(admin, minimal).status == 200
    assert {key: get_settings(admin)[key] for key in minimal} == minimal


def test_settings_are_per_organisation(admin: Console, outsider_admin: Console) -> None:
    assert put_settings(admin, policy(max_lifetime_days=30, default_lifetime_days=7)).status == 200

    assert get_settings(outsider_admin) == UNCHANGED
    assert outsider_admin.create_ok()["expires_at"] == iso(NOW + timedelta(days=90))
    assert outsider_admin.create_ok(expires_at=iso(NOW + timedelta(days=300)))
    # And the other way round: the outsider's change does not reach org-acme.
    assert put_settings(outsider_admin, policy(max_active_tokens_per_user=1)).status == 200
    assert get_settings(admin)["max_active_tokens_per_user"] == 50
    assert get_settings(admin)["max_lifetime_days"] == 30


def test_an_admin_of_another_org_cannot_name_it_in_the_body(admin: Console, outsider_admin: Console) -> None:
    response = put_settings(outsider_admin, {**policy(max_lifetime_days=1, default_lifetime_days=1), "org_id": ORG})
    assert response.status == 400
    assert get_settings(admin)["max_lifetime_days"] == 366


# -- create obeys the policy ---------------------------------------------------------------


def test_lower_max_lifetime_rejects_a_previously_valid_expiry(admin: Console, member: Console) -> None:
    sixty_days = iso(NOW + timedelta(days=60))
    assert member.create_ok(expires_at=sixty_days)["expires_at"] == sixty_days

    assert put_settings(admin, policy(max_lifetime_days=30, default_lifetime_days=30)).status == 200

    response = member.create(expires_at=sixty_days)
    reason = assert_invalid(response, "expires_at")
    assert "30 days" in reason
    assert (NOW + timedelta(days=30)).date().isoformat() in reason
    assert member.create_ok(expires_at=iso(NOW + timedelta(days=30)))
    assert assert_invalid(member.create(expires_at=iso(NOW + timedelta(days=30, seconds=1))), "expires_at")


def test_higher_max_lifetime_allows_longer_tokens(admin: Console, member: Console) -> None:
    two_years = iso(NOW + timedelta(days=730))
    assert_invalid(member.create(expires_at=two_years), "expires_at")
    assert put_settings(admin, policy(max_lifetime_days=730)).status == 200
    assert member.create_ok(expires_at=two_years)["expires_at"] == two_years


def test_changed_default_lifetime_applies_when_expiry_is_omitted(admin: Console, member: Console) -> None:
    assert member.create_ok()["expires_at"] == iso(NOW + timedelta(days=90))
    assert put_settings(admin, policy(default_lifetime_days=7)).status == 200
    assert member.create_ok()["expires_at"] == iso(NOW + timedelta(days=7))


def test_lower_cap_is_enforced_on_the_next_create(admin: Console, member: Console) -> None:
    for index in range(3):
        member.create_ok(f"token {index}")
    assert put_settings(admin, policy(max_active_tokens_per_user=3)).status == 200

    response = member.create("one too many")
    assert response.status == 409, response.body
    assert response.json()["error"]["code"] == "active_token_limit_reached"
    assert "3 active tokens" in response.json()["error"]["message"]


def test_cap_below_current_count_keeps_existing_tokens_but_blocks_new(admin: Console, member: Console) -> None:
    created = [member.create_ok(f"token {index}")["token_id"] for index in range(3)]
    assert put_settings(admin, policy(max_active_tokens_per_user=1)).status == 200

    assert member.create().status == 409
    listed = member.request("GET", "/tokens", query={"status": "active"}).json()["items"]
    assert sorted(item["token_id"] for item in listed) == sorted(created)
    # Revoking one still leaves two, above the cap of one.
    assert member.request("DELETE", f"/tokens/{created[0]}").status == 200
    assert member.create().status == 409


# -- an operator's catalog ----------------------------------------------------------------

CUSTOM_CATALOG = {
    "scopes": {"billing:read": "Read invoices.", "billing:write": "Pay invoices."},
    "roles": {
        "owner": {"organisation_admin": True, "scopes": ["billing:read", "billing:write"]},
        "accountant": {"scopes": ["billing:read"]},
    },
}


def test_an_operator_catalog_replaces_the_default(dynamodb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(CUSTOM_CATALOG))
    monkeypatch.setenv("SCOPE_CATALOG_PATH", str(path))
    wiring.reset()
    try:
        accountant = Identity("acc-1", "org-acme", "accountant")
        scopes = console_request(accountant, "GET", "/scopes").json()
        assert scopes == {"role": "accountant", "scopes": [{"name": "billing:read", "description": "Read invoices."}]}
        denied = console_request(accountant, "POST", "/tokens", body={"name": "x", "scopes": ["billing:write"]})
        assert denied.status == 403
        # A role the default catalog knows is unknown here: no access at all.
        assert console_request(Identity("m", "org-acme", "member"), "GET", "/scopes").status == 403
    finally:
        wiring.reset()
