"""Per-token address allowlists (`allowed_cidrs`), without AWS: what an entry may be (the model,
its normal form, and the OpenAPI document saying exactly the same), how the authorizer decides
by the source address, what it answers on REST (REQUEST and TOKEN) and HTTP APIs, and why the
address must be part of the authorizer's cache key (template.yaml and the dev server key on it)."""

from __future__ import annotations

import ipaddress
import itertools
import re
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from support import with_other_secret

from devserver.gateway import context_variable, policy_allows
from devserver.openapi import openapi_document
from devserver.template import load_template
from token_service.domain.authorizer import UNAUTHENTICATED, Reason, TokenAuthorizer, address_allowed
from token_service.domain.errors import StoreUnavailable
from token_service.domain.records import TokenGrant
from token_service.domain.routes import parse_route_map
from token_service.domain.token_format import generate_token, hash_token
from token_service.http.authorizer_events import decision_fields, parse_event, respond
from token_service.http.models import (
    CIDR_MAX_LENGTH,
    CIDR_PATTERN,
    MAX_ALLOWED_CIDRS,
    CreateTokenRequest,
    TokenView,
    parse_cidr,
)
from token_service.http.responses import problems_from_validation

NOW = 1_900_000_000
PREFIX = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
ROUTES = parse_route_map(
    {"routes": {"GET /v1/reports": ["reports:read"], "GET /v1/reports/{report_id}": ["reports:read"]}}
)
OFFICE = ("203.0.113.0/24", "2001:db8:1::/48")
INSIDE = ["203.0.113.7", "203.0.113.255", "2001:db8:1::1", "2001:db8:1:ffff::9", "::ffff:203.0.113.9"]
OUTSIDE = ["203.0.114.7", "198.51.100.1", "2001:db8:2::1", "::ffff:198.51.100.1", "127.0.0.1", "::1"]
UNUSABLE = [None, "", "not-an-address", "203.0.113.7, 198.51.100.1", "203.0.113.7/32", " 203.0.113.7", "x" * 10_000]


class Store:
    def __init__(self) -> None:
        self.grants: dict[str, TokenGrant] = {}
        self.reads: list[str] = []
        self.uses: list[tuple[str, str | None]] = []
        self.fail_reads = False

    def get_grant(self, token_id: str) -> TokenGrant | None:
        self.reads.append(token_id)
        if self.fail_reads:
            raise StoreUnavailable()
        return self.grants.get(token_id)

    def record_use(self, token_id: str, used_at: int, source_ip: str | None, not_since: int) -> None:
        self.uses.append((token_id, source_ip))


def plain_id(value: object) -> str:
    """A test id of letters, digits and . : / - only: mutmut selects tests by id on its command
    line, where spaces, commas and empty ids do not survive."""
    return re.sub(r"[^A-Za-z0-9.:/-]", "_", repr(value))


def mint(store: Store, cidrs: tuple[str, ...] = OFFICE, **fields: Any) -> str:
    parsed = generate_token("lgk")
    defaults: dict[str, Any] = {"expires_at": NOW + 86_400, "created_at": NOW - 60}
    store.grants[parsed.token_id] = TokenGrant(
        token_id=parsed.token_id,
        org_id="org-acme",
        owner_id="user-1",
        scopes=("reports:read",),
        secret_hash=hash_token(parsed.token),
        hash_version=1,
        allowed_cidrs=cidrs,
        **{**defaults, **fields},
    )
    return parsed.token


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def authorizer(store: Store) -> TokenAuthorizer:
    return TokenAuthorizer(store, ROUTES, "lgk", clock=lambda: NOW)


def rest_event(kind: str, token: str, source_ip: str | None, path: str = "/v1/reports/42") -> dict[str, Any]:
    resource = "/v1/reports/{report_id}" if path != "/v1/reports" else path
    arn = f"{PREFIX}/GET{path}"
    if kind == "TOKEN":
        return {"type": "TOKEN", "authorizationToken": f"Bearer {token}", "methodArn": arn}
    return {
        "type": "REQUEST",
        "methodArn": arn,
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Authorization": f"Bearer {token}"},
        "requestContext": {"identity": {"sourceIp": source_ip}, "resourcePath": resource, "httpMethod": "GET"},
    }


def http_event(token: str, source_ip: str | None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "GET /v1/reports/{report_id}",
        "headers": {"authorization": f"Bearer {token}"},
        "requestContext": {
            "routeKey": "GET /v1/reports/{report_id}",
            "http": {"method": "GET", "path": "/v1/reports/42", "sourceIp": source_ip},
        },
    }


def decide(authorizer: TokenAuthorizer, event: dict[str, Any]) -> Any:
    request = parse_event(event)
    return request, authorizer.decide(request.header, request.method, request.path, request.source_ip)


# -- the decision -------------------------------------------------------------------------------


@pytest.mark.parametrize("source_ip", INSIDE, ids=plain_id)
def test_an_address_inside_the_allowlist_is_allowed_and_recorded(
    authorizer: TokenAuthorizer, store: Store, source_ip: str
) -> None:
    token = mint(store)
    _, decision = decide(authorizer, rest_event("REQUEST", token, source_ip))
    assert decision.reason is Reason.ALLOWED
    assert store.uses == [(token[4:20], source_ip)]


@pytest.mark.parametrize("source_ip", OUTSIDE + UNUSABLE, ids=plain_id)
def test_any_other_address_is_refused_with_one_read_and_no_use_recorded(
    authorizer: TokenAuthorizer, store: Store, source_ip: str | None
) -> None:
    token = mint(store)
    _, decision = decide(authorizer, rest_event("REQUEST", token, source_ip))
    assert decision.reason is Reason.IP_NOT_ALLOWED
    assert Reason.IP_NOT_ALLOWED not in UNAUTHENTICATED  # the token is valid: a 403, not a 401
    assert decision.allowed_routes == () and not decision.allowed
    assert store.reads == [token[4:20]]  # the allowlist came with the one read
    # Not a use: the address is not recorded, and it does not keep the token alive under the
    # organisation's unused-token policy.
    assert store.uses == []


def test_a_token_without_an_allowlist_is_allowed_from_any_address_and_from_token_events(
    authorizer: TokenAuthorizer, store: Store
) -> None:
    token = mint(store, ())
    for source_ip in OUTSIDE + UNUSABLE:
        assert decide(authorizer, rest_event("REQUEST", token, source_ip))[1].reason is Reason.ALLOWED
    assert decide(authorizer, rest_event("TOKEN", token, None))[1].reason is Reason.ALLOWED


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"revoked_at": NOW - 1}, Reason.REVOKED),
        ({"disabled_at": NOW - 1}, Reason.DISABLED),
        ({"expires_at": NOW}, Reason.EXPIRED),
        ({"unused_after_days": 30, "created_at": NOW - 31 * 86_400}, Reason.UNUSED),
    ],
)
def test_a_token_refused_for_itself_is_refused_as_such_from_any_address(
    authorizer: TokenAuthorizer, store: Store, fields: dict[str, Any], reason: Reason
) -> None:
    """The address is checked once the token is known valid: a revoked token is a 401 wherever
    it comes from, and an address never turns a 401 into a 403 (it tells nothing of the token)."""
    token = mint(store, **fields)
    for source_ip in (INSIDE[0], OUTSIDE[0], None):
        assert decide(authorizer, rest_event("REQUEST", token, source_ip))[1].reason is reason


def test_a_wrong_secret_is_a_401_from_any_address(authorizer: TokenAuthorizer, store: Store) -> None:
    token = with_other_secret(mint(store))
    for source_ip in (INSIDE[0], OUTSIDE[0]):
        assert decide(authorizer, rest_event("REQUEST", token, source_ip))[1].reason is Reason.WRONG_SECRET


def test_token_events_never_allow_a_token_with_an_allowlist(authorizer: TokenAuthorizer, store: Store) -> None:
    """A TOKEN event carries no address; its cached policy serves every route and address."""
    token = mint(store)
    for path in ("/v1/reports", "/v1/reports/42"):
        request, decision = decide(authorizer, rest_event("TOKEN", token, None, path))
        assert decision.reason is Reason.IP_NOT_ALLOWED
        policy = respond(decision, request)
        (statement,) = policy["policyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        for other in ("/v1/reports", "/v1/reports/42", "/v1/reports/7"):
            assert not policy_allows(policy, f"{PREFIX}/GET{other}")


def test_the_answers_are_a_403_on_rest_and_a_refusal_on_http_apis(authorizer: TokenAuthorizer, store: Store) -> None:
    token = mint(store)
    request, decision = decide(authorizer, rest_event("REQUEST", token, OUTSIDE[0]))
    policy = respond(decision, request)  # a policy, not "Unauthorized": API Gateway answers 403
    assert not policy_allows(policy, f"{PREFIX}/GET/v1/reports/42")
    assert policy["principalId"] == "user-1"
    request, decision = decide(authorizer, http_event(token, OUTSIDE[0]))
    assert respond(decision, request)["isAuthorized"] is False
    request, decision = decide(authorizer, http_event(token, INSIDE[0]))
    assert respond(decision, request)["isAuthorized"] is True


def test_the_decision_line_names_the_reason_and_the_refused_address(authorizer: TokenAuthorizer, store: Store) -> None:
    token = mint(store)
    request, decision = decide(authorizer, rest_event("REQUEST", token, "198.51.100.1"))
    fields = decision_fields(decision, request, "req-1", None)
    assert (fields["decision"], fields["source_ip"], fields["token_id"]) == ("deny", "198.51.100.1", token[4:20])
    assert token not in str(fields) and token[20:] not in str(fields)
    request, decision = decide(authorizer, rest_event("TOKEN", token, None))
    assert decision_fields(decision, request, "req-2", None)["source_ip"] is None
    request, decision = decide(authorizer, rest_event("REQUEST", token, INSIDE[0]))
    assert "source_ip" not in decision_fields(decision, request, "req-3", None)  # only where it decided


def test_a_stored_entry_that_is_not_a_network_admits_nobody() -> None:
    """Fail closed: a corrupted item cannot open a token to every address."""
    assert not address_allowed(("garbage",), "203.0.113.7")
    assert not address_allowed(("garbage", "*"), "192.0.2.1")
    assert address_allowed(("garbage", "203.0.113.0/24"), "203.0.113.7")
    assert not address_allowed(OFFICE, 3232235777)  # type: ignore[arg-type]  # not a string: refused, not a crash


# -- the cache key --------------------------------------------------------------------------------


def test_the_address_must_be_part_of_the_request_authorizers_cache_key(
    authorizer: TokenAuthorizer, store: Store
) -> None:
    """For every pair of requests that share a cache entry (same token, route and address), the
    first answer decides the second exactly; with the address left out of the key, a cached allow
    would answer for an address the token is not for."""
    token = mint(store)
    addresses = [INSIDE[0], INSIDE[2], OUTSIDE[0], OUTSIDE[2], None]
    paths = ["/v1/reports/42", "/v1/reports/7"]
    over_granted = []
    for (first_ip, first_path), (second_ip, second_path) in itertools.product(
        itertools.product(addresses, paths), repeat=2
    ):
        request, decision = decide(authorizer, rest_event("REQUEST", token, first_ip, first_path))
        policy = respond(decision, request)
        reused = policy_allows(policy, f"{PREFIX}/GET{second_path}")
        expected = decide(authorizer, rest_event("REQUEST", token, second_ip, second_path))[1].allowed
        if first_ip == second_ip:
            assert reused == expected, (first_ip, first_path, second_ip, second_path)
        elif reused and not expected:
            over_granted.append((first_ip, second_ip))
    assert over_granted  # why template.yaml keys the cache on context.identity.sourceIp


def test_the_templates_authorizer_keys_its_cache_on_the_source_address() -> None:
    authorizer = load_template()["Resources"]["TokenApi"]["Properties"]["Auth"]["Authorizers"]["TokenAuthorizer"]
    assert authorizer["FunctionPayloadType"] == "REQUEST"
    assert authorizer["Identity"]["Context"] == ["httpMethod", "resourcePath", "identity.sourceIp"]


def test_the_dev_server_reads_each_context_identity_source_from_the_event() -> None:
    event = rest_event("REQUEST", "lgk_x", "198.51.100.1")
    assert context_variable(event, "identity.sourceIp") == "198.51.100.1"
    assert context_variable(event, "httpMethod") == "GET"
    assert context_variable(event, "resourcePath") == "/v1/reports/{report_id}"
    assert context_variable(event, "identity") is None  # an object is no value
    assert context_variable(event, "identity.nothing") is None
    assert context_variable(rest_event("REQUEST", "lgk_x", None), "identity.sourceIp") is None


# -- what an entry may be: the model, its normal form, the document -----------------------------------


@pytest.mark.parametrize(
    ("given_value", "stored"),
    [
        ("203.0.113.0/24", "203.0.113.0/24"),
        ("203.0.113.77/24", "203.0.113.0/24"),  # bits after the prefix cleared, as the answer shows
        ("203.0.113.7", "203.0.113.7/32"),  # one address alone
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8:0:0::/48", "2001:db8::/48"),  # compressed, lower case
        ("2001:db8::1", "2001:db8::1/128"),
        ("::", "::/128"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0/128"),
    ],
    ids=plain_id,
)
def test_entries_are_stored_in_normal_form(given_value: str, stored: str) -> None:
    assert parse_cidr(given_value) == stored


def test_the_command_merges_duplicates_and_sorts_ipv4_first() -> None:
    body = {
        "name": "office",
        "scopes": ["reports:read"],
        "allowed_cidrs": ["2001:db8::/32", "10.0.0.1/8", "10.0.0.0/8", "192.0.2.1", "2001:DB8::/32"],
    }
    assert CreateTokenRequest.model_validate(body).command().allowed_cidrs == (
        "10.0.0.0/8",
        "192.0.2.1/32",
        "2001:db8::/32",
    )
    for empty in (None, []):
        assert CreateTokenRequest.model_validate({**body, "allowed_cidrs": empty}).command().allowed_cidrs == ()


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("10.0.0.0/33", "must end in a prefix length from /0 to /32, without leading zeros"),
        ("::1/129", "must end in a prefix length from /0 to /128, without leading zeros"),
        ("10.0.0.0/08", "must end in a prefix length from /0 to /32, without leading zeros"),
        ("10.0.0.0/255.0.0.0", "must end in a prefix length from /0 to /32, without leading zeros"),
        ("abc", "is not an IPv4 or IPv6 address or network"),
        ("10.0.0.256", "is not an IPv4 or IPv6 address or network"),
        ("010.0.0.1", "is not an IPv4 or IPv6 address or network"),
        ("fe80::1%eth0", "is not an IPv4 or IPv6 address or network"),
        (" 10.0.0.0/8", "is not an IPv4 or IPv6 address or network"),
        ("10.0.0.0/8\n", "must end in a prefix length from /0 to /32, without leading zeros"),
        ("\u0661\u0660.0.0.0/8", "is not an IPv4 or IPv6 address or network"),  # Arabic-Indic digits
        ("", "is not an IPv4 or IPv6 address or network"),
        ("x" * (CIDR_MAX_LENGTH + 1), "must be at most 64 characters"),
    ],
    ids=plain_id,
)
def test_a_bad_entry_is_refused_naming_its_position_and_the_reason(value: str, reason: str) -> None:
    body = {"name": "n", "scopes": ["reports:read"], "allowed_cidrs": ["192.0.2.0/24", "198.51.100.0/24", value]}
    with pytest.raises(ValidationError) as raised:
        CreateTokenRequest.model_validate(body)
    (error,) = raised.value.errors()
    assert error["loc"] == ("allowed_cidrs", 2)
    (problem,) = problems_from_validation([{**error, "loc": ("body", *error["loc"])}])
    assert problem.field == "allowed_cidrs.2"
    assert problem.reason.startswith(reason)
    if len(value) > 3:
        assert value.strip() not in problem.reason  # never echoed


def test_the_view_always_lists_the_allowlist() -> None:
    fields = TokenView.model_fields
    assert "allowed_cidrs" in fields and fields["allowed_cidrs"].default_factory is list


@pytest.fixture(scope="module")
def cidr_schemas() -> tuple[dict[str, Any], Any]:
    document = openapi_document("http://localhost:3000")
    schemas = document["components"]["schemas"]
    field = schemas["CreateTokenRequest"]["properties"]["allowed_cidrs"]
    (array,) = [option for option in field["anyOf"] if option.get("type") == "array"]
    return array, jsonschema_rs.validator_for(array["items"])


def test_the_document_states_the_limits(cidr_schemas: tuple[dict[str, Any], Any]) -> None:
    array, _ = cidr_schemas
    assert array["maxItems"] == MAX_ALLOWED_CIDRS and "minItems" not in array
    assert array["items"]["maxLength"] == CIDR_MAX_LENGTH and array["items"]["pattern"] == CIDR_PATTERN
    body = {"name": "n", "scopes": ["reports:read"]}
    within = [f"10.0.{index}.0/24" for index in range(MAX_ALLOWED_CIDRS)]
    CreateTokenRequest.model_validate({**body, "allowed_cidrs": within})
    with pytest.raises(ValidationError, match=r"at most 20 items"):
        CreateTokenRequest.model_validate({**body, "allowed_cidrs": [*within, "10.1.0.0/24"]})


def networks() -> st.SearchStrategy[str]:
    """Valid entries, written in each form a person might: compressed, exploded, upper case,
    with or without the prefix, with host bits."""
    v4 = st.builds(lambda n, p: f"{ipaddress.IPv4Address(n)}/{p}", st.integers(0, 2**32 - 1), st.integers(0, 32))
    v6 = st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128), st.sampled_from(["compressed", "exploded"]))
    v6_text = v6.map(lambda t: f"{getattr(ipaddress.IPv6Address(t[0]), t[2])}/{t[1]}")
    addresses = st.one_of(
        st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
        st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)).upper()),
        st.integers(0, 2**32 - 1).map(lambda n: f"::ffff:{ipaddress.IPv4Address(n)}"),
    )
    return st.one_of(v4, v6_text, addresses)


@settings(max_examples=400, deadline=None)
@given(value=networks())
def test_every_network_written_normally_is_accepted_by_model_and_document(
    cidr_schemas: tuple[dict[str, Any], Any], value: str
) -> None:
    _, item = cidr_schemas
    assert item.is_valid(value), value
    stored = parse_cidr(value)
    assert ipaddress.ip_network(stored) == ipaddress.ip_network(value, strict=False)
    assert parse_cidr(stored) == stored  # the normal form is stable


@settings(max_examples=400, deadline=None)
@given(value=st.from_regex(CIDR_PATTERN, fullmatch=True))
def test_whatever_the_pattern_allows_the_model_accepts(cidr_schemas: tuple[dict[str, Any], Any], value: str) -> None:
    """positive_data_acceptance: schemathesis sends such strings and expects them accepted."""
    _, item = cidr_schemas
    if len(value) > CIDR_MAX_LENGTH:
        return
    assert item.is_valid(value)
    ipaddress.ip_network(parse_cidr(value))


@settings(max_examples=400, deadline=None)
@given(
    value=st.one_of(
        st.text(alphabet="0123456789abcdefABCDEF:./% \n", max_size=50),
        st.text(max_size=20),
    )
)
def test_the_model_and_the_document_agree_on_any_string(cidr_schemas: tuple[dict[str, Any], Any], value: str) -> None:
    _, item = cidr_schemas
    try:
        parse_cidr(value)
        accepted = len(value) <= CIDR_MAX_LENGTH
    except ValueError:
        accepted = False
    assert item.is_valid(value) == accepted, value
