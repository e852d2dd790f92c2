"""Sign-in on the local stack, as `make dev` runs it: the local user pool's managed login
(authorization code + PKCE), the gateway's check of ID tokens as API Gateway's Cognito
authorizer makes it (signature against the pool's keys, issuer, token_use, expiry; the audience
is the functions'), the X-Dev-* headers granting nothing, and cross-site writes refused."""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.parse
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from support import (
    SEED_PASSWORD,
    SEEDED,
    RunningServer,
    authorize_query,
    make_token,
    pkce_pair,
    sign_in,
    unverified_claims,
)

pytestmark = pytest.mark.devserver(identity_headers=False)

GATEWAY_401 = (401, "UNAUTHORIZED")  # API Gateway's own answer: no function ran
HANDLER_401 = (401, "not_authenticated")  # the function's: it ran, and refused the claims


@pytest.fixture(scope="module")
def config(server: RunningServer) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/config.json", timeout=30)
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    document: dict[str, Any] = answer.json()
    return document


@pytest.fixture(scope="module")
def bob(server: RunningServer) -> dict[str, Any]:
    return sign_in(server, "bob@acme.example")


def answer_of(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json().get("error", {}).get("code", "")


def call(server: RunningServer, method: str, path: str, headers: dict[str, str], body: Any = None) -> requests.Response:
    return requests.request(method, server.url + path, json=body, headers=headers, timeout=30)


def test_the_console_configuration_names_the_local_pool(server: RunningServer, config: dict[str, Any]) -> None:
    assert config["apiUrl"] == config["authDomain"] == server.url
    assert config["redirectUri"] == server.url + "/"
    assert config["userPoolId"].startswith("us-east-1_") and config["clientId"] and config["region"] == "us-east-1"
    assert "devIdentityHeaders" not in config
    # The console at localhost gets the same server under that name (its own origin).
    localhost = requests.get(f"http://localhost:{server.port}/config.json", timeout=30).json()
    assert localhost["redirectUri"] == f"http://localhost:{server.port}/"


def test_start_up_prints_every_seeded_user_with_a_password(server: RunningServer) -> None:
    output = server.output()
    for email, (org, role) in SEEDED.items():
        line = next(line for line in output.splitlines() if email in line)
        assert SEED_PASSWORD in line
        assert (f"{org} {role}" if org else "no organisation") in line


def test_the_x_dev_headers_grant_nothing_by_default(server: RunningServer) -> None:
    admin = {"X-Dev-User-Id": "alice", "X-Dev-Org-Id": "org-acme", "X-Dev-Role": "admin"}
    assert answer_of(call(server, "GET", "/scopes", admin)) == GATEWAY_401
    assert answer_of(call(server, "POST", "/tokens", admin, {"name": "x", "scopes": ["reports:read"]})) == GATEWAY_401
    assert answer_of(call(server, "GET", "/tokens", {})) == GATEWAY_401  # nor does no header at all


def test_a_seeded_users_id_token_acts_as_that_user(server: RunningServer, bob: dict[str, Any]) -> None:
    claims = unverified_claims(bob["id_token"])
    assert (claims["token_use"], claims["email"], claims["custom:org_id"], claims["custom:role"]) == (
        "id",
        "bob@acme.example",
        "org-acme",
        "member",
    )
    assert bob["token_type"] == "Bearer" and bob["expires_in"] == 3600
    assert claims["exp"] - claims["iat"] == 3600  # the template's IdTokenValidity: 60 minutes
    headers = {"Authorization": bob["id_token"]}
    assert call(server, "GET", "/scopes", headers).json()["role"] == "member"
    created = call(server, "POST", "/tokens", headers, {"name": "bob's", "scopes": ["reports:read"]})
    assert created.status_code == 201
    assert created.json()["owner_id"] == claims["sub"]


def test_each_organisation_and_role_signs_in(server: RunningServer) -> None:
    for email, (org, role) in SEEDED.items():
        if org is None:
            continue
        token = sign_in(server, email)["id_token"]
        scopes = call(server, "GET", "/scopes", {"Authorization": token})
        assert scopes.status_code == 200 and scopes.json()["role"] == role, email
        assert unverified_claims(token)["custom:org_id"] == org


def test_a_user_without_organisation_or_role_is_refused_by_the_functions(server: RunningServer) -> None:
    token = sign_in(server, "nora@newcomer.example")["id_token"]
    claims = unverified_claims(token)
    assert "custom:org_id" not in claims and "custom:role" not in claims
    assert answer_of(call(server, "GET", "/tokens", {"Authorization": token})) == HANDLER_401


# -- the gateway's check of ID tokens ------------------------------------------------------------------


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def with_claims(token: str, **changes: Any) -> str:
    """The token with its payload changed and its signature kept (a tampered token)."""
    header, _, signature = token.split(".")
    return ".".join([header, b64({**unverified_claims(token), **changes}), signature])


def forged_tokens(bob: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    claims = unverified_claims(bob["id_token"])
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = claims["iss"]
    other_pool = issuer.rsplit("/", 1)[0] + "/us-east-1_0therpool0000000000000000000000"
    unsigned = b64({"alg": "none", "typ": "JWT", "kid": "dummy"}) + "." + b64({**claims, "custom:role": "admin"}) + "."
    return {
        "tampered-claims": with_claims(bob["id_token"], **{"custom:role": "admin", "custom:org_id": "org-globex"}),
        "forged-signature": make_token({**claims, "custom:role": "admin"}, key=other_key),
        "alg-none": unsigned,
        "alg-none-with-signature": unsigned + bob["id_token"].split(".")[2],
        "hs256-with-public-key": _hs256_with_public_key(claims),
        "unknown-key-id": make_token(claims, kid="another-key"),
        "expired": make_token({**claims, "iat": now - 7200, "exp": now - 3600}),
        "expired-a-second-ago": make_token({**claims, "iat": now - 3601, "exp": now - 1}),
        "no-expiry": make_token({key: value for key, value in claims.items() if key != "exp"}),
        "other-pool": make_token({**claims, "iss": other_pool}),
        "no-issuer": make_token({key: value for key, value in claims.items() if key != "iss"}),
        "access-token": bob["access_token"],
        "id-token-claiming-access": make_token({**claims, "token_use": "access"}),
        "no-token-use": make_token({key: value for key, value in claims.items() if key != "token_use"}),
        "bearer-prefix": f"Bearer {bob['id_token']}",
        "refresh-token": bob["refresh_token"],
        "garbage": "not.a.jwt",
    }


def _hs256_with_public_key(claims: dict[str, Any]) -> str:
    """The algorithm confusion attack: HS256 keyed with the pool's public key (PEM)."""
    import hashlib
    import hmac

    from cryptography.hazmat.primitives import serialization
    from support import moto_signing_key

    public = (
        moto_signing_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = b64({"alg": "HS256", "typ": "JWT", "kid": "dummy"}) + "." + b64(claims)
    signature = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


FORGED = [
    "tampered-claims",
    "forged-signature",
    "alg-none",
    "alg-none-with-signature",
    "hs256-with-public-key",
    "unknown-key-id",
    "expired",
    "expired-a-second-ago",
    "no-expiry",
    "other-pool",
    "no-issuer",
    "access-token",
    "id-token-claiming-access",
    "no-token-use",
    "bearer-prefix",
    "refresh-token",
    "garbage",
]


@pytest.fixture(scope="module")
def forged(bob: dict[str, Any], config: dict[str, Any]) -> dict[str, str]:
    return forged_tokens(bob, config)


@pytest.mark.parametrize("kind", FORGED)
def test_the_gateway_refuses_a_token_the_pool_did_not_issue_as_a_valid_id_token(
    server: RunningServer, bob: dict[str, Any], forged: dict[str, str], kind: str
) -> None:
    token = forged[kind]
    headers = {"Authorization": token}
    before = call(server, "GET", "/tokens", {"Authorization": bob["id_token"]}).json()["items"]
    assert answer_of(call(server, "GET", "/tokens", headers)) == GATEWAY_401
    assert answer_of(call(server, "POST", "/tokens", headers, {"name": "forged", "scopes": ["reports:read"]})) == (
        GATEWAY_401
    )
    assert call(server, "GET", "/tokens", {"Authorization": bob["id_token"]}).json()["items"] == before


def test_a_valid_id_token_of_another_app_client_passes_the_gateway_and_the_functions_refuse_it(
    server: RunningServer, bob: dict[str, Any]
) -> None:
    """Signed with the pool's key, this pool's issuer, an ID token, not expired: API Gateway lets
    it through; the console's functions accept their own app client only (CONSOLE_CLIENT_IDS)."""
    claims = unverified_claims(bob["id_token"])
    other_client = make_token({**claims, "aud": "another0app0client0of0pool"})
    assert answer_of(call(server, "GET", "/scopes", {"Authorization": other_client})) == HANDLER_401
    no_audience = make_token({key: value for key, value in claims.items() if key != "aud"})
    assert answer_of(call(server, "GET", "/scopes", {"Authorization": no_audience})) == HANDLER_401
    # The same claims with the console's own client are served: the key and the check are right.
    assert call(server, "GET", "/scopes", {"Authorization": make_token(claims)}).status_code == 200


# -- the local managed login -----------------------------------------------------------------------------


def test_sign_in_refuses_a_wrong_password_without_a_code(server: RunningServer, config: dict[str, Any]) -> None:
    _, challenge = pkce_pair()
    query = urllib.parse.urlencode(authorize_query(config, challenge))
    answer = requests.post(
        f"{server.url}/login?{query}",
        data={"username": "bob@acme.example", "password": "wrong-password"},
        headers={"Origin": server.url},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "Incorrect username or password." in answer.text
    assert "Set-Cookie" not in answer.headers
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert answer.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("change", "redirects"),
    [
        pytest.param({"client_id": "unknown0client"}, False, id="unknown-client"),
        pytest.param({"redirect_uri": "https://evil.example/"}, False, id="foreign-redirect-uri"),
        pytest.param({"redirect_uri": "http://127.0.0.1:1/"}, False, id="other-port"),
        pytest.param({"response_type": "token"}, True, id="implicit-grant"),
        pytest.param({"scope": "openid aws.cognito.signin.user.admin"}, True, id="scope-not-allowed"),
        pytest.param({"code_challenge_method": "plain"}, True, id="plain-pkce"),
        pytest.param({"code_challenge": ""}, True, id="no-pkce"),
    ],
)
def test_authorize_refuses_what_the_app_client_does_not_allow(
    server: RunningServer, config: dict[str, Any], change: dict[str, str], redirects: bool
) -> None:
    _, challenge = pkce_pair()
    query = {**authorize_query(config, challenge), **change}
    answer = requests.get(f"{server.url}/oauth2/authorize", params=query, allow_redirects=False, timeout=30)
    if redirects:  # back to the console, with the error and the state, and no code
        assert answer.status_code == 302
        location = urllib.parse.urlsplit(answer.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == config["redirectUri"]
        parameters = urllib.parse.parse_qs(location.query)
        assert parameters["error"] and parameters["state"] == ["state-1"] and "code" not in parameters
    else:  # never to a URI that is not the client's
        assert answer.status_code == 400 and "Location" not in answer.headers
        assert "Sign-in error" in answer.text


def code_for(server: RunningServer, config: dict[str, Any], challenge: str) -> str:
    http = requests.Session()
    query = urllib.parse.urlencode(authorize_query(config, challenge))
    answer = http.post(
        f"{server.url}/login?{query}",
        data={"username": "carol@acme.example", "password": SEED_PASSWORD},
        headers={"Origin": server.url},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302
    return urllib.parse.parse_qs(urllib.parse.urlsplit(answer.headers["Location"]).query)["code"][0]


def redeem(
    server: RunningServer, config: dict[str, Any], code: str, verifier: str, **changes: str
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": config["clientId"],
        "code": code,
        "redirect_uri": config["redirectUri"],
        "code_verifier": verifier,
        **changes,
    }
    return requests.post(f"{server.url}/oauth2/token", data=form, timeout=30)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"code_verifier": "x" * 64}, id="other-verifier"),
        pytest.param({"client_id": "another0client"}, id="other-client"),
        pytest.param({"redirect_uri": "http://localhost:1/"}, id="other-redirect-uri"),
        pytest.param({"grant_type": "refresh_token"}, id="other-grant"),
    ],
)
def test_a_code_is_redeemed_only_by_its_client_redirect_uri_and_verifier(
    server: RunningServer, config: dict[str, Any], change: dict[str, str]
) -> None:
    verifier, challenge = pkce_pair()
    code = code_for(server, config, challenge)
    refused = redeem(server, config, code, verifier, **change)
    assert refused.status_code == 400 and refused.json()["error"] in {"invalid_grant", "unsupported_grant_type"}
    assert "id_token" not in refused.json()


def test_a_code_is_good_once(server: RunningServer, config: dict[str, Any]) -> None:
    verifier, challenge = pkce_pair()
    code = code_for(server, config, challenge)
    first = redeem(server, config, code, verifier)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    again = redeem(server, config, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_a_session_signs_in_again_without_the_password_until_sign_out(
    server: RunningServer, config: dict[str, Any]
) -> None:
    http = requests.Session()
    first = sign_in(server, "erin@globex.example", http=http)
    assert http.cookies.get("cognito")
    _, challenge = pkce_pair()
    again = http.get(
        f"{server.url}/oauth2/authorize", params=authorize_query(config, challenge), allow_redirects=False, timeout=30
    )
    assert again.status_code == 302 and "code=" in again.headers["Location"]  # no sign-in form
    assert unverified_claims(first["id_token"])["email"] == "erin@globex.example"

    refused = http.get(
        f"{server.url}/logout",
        params={"client_id": config["clientId"], "logout_uri": "https://evil.example/"},
        allow_redirects=False,
        timeout=30,
    )
    assert refused.status_code == 400 and "Location" not in refused.headers
    out = http.get(
        f"{server.url}/logout",
        params={"client_id": config["clientId"], "logout_uri": config["redirectUri"]},
        allow_redirects=False,
        timeout=30,
    )
    assert out.status_code == 302 and out.headers["Location"] == config["redirectUri"]
    after = http.get(
        f"{server.url}/oauth2/authorize", params=authorize_query(config, challenge), allow_redirects=False, timeout=30
    )
    assert after.status_code == 302 and after.headers["Location"].startswith("/login?")


# -- cross-site requests ---------------------------------------------------------------------------------


def token_count(server: RunningServer, token: str) -> int:
    return len(call(server, "GET", "/tokens?limit=100", {"Authorization": token}).json()["items"])


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1:1", "http://localhost.evil.example"]
)
def test_a_write_from_another_origin_is_refused(server: RunningServer, bob: dict[str, Any], origin: str) -> None:
    token = bob["id_token"]
    before = token_count(server, token)
    headers = {"Authorization": token, "Origin": origin}
    assert answer_of(call(server, "POST", "/tokens", headers, {"name": "csrf", "scopes": ["reports:read"]})) == (
        403,
        "forbidden",
    )
    policy = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": 5}
    assert call(server, "PUT", "/settings", headers, policy).status_code == 403
    assert call(server, "DELETE", "/tokens/0000000000000000", headers).status_code == 403
    assert token_count(server, token) == before
    # Reads are not writes: the Origin alone refuses nothing (the ID token decides).
    assert call(server, "GET", "/tokens", headers).status_code == 200


def test_a_write_from_the_servers_own_origin_is_served(server: RunningServer, bob: dict[str, Any]) -> None:
    for origin in (server.url, f"http://localhost:{server.port}"):
        headers = {"Authorization": bob["id_token"], "Origin": origin}
        assert call(server, "POST", "/tokens", headers, {"name": "same origin", "scopes": ["reports:read"]}).ok


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data"],
)
def test_a_body_must_be_json(server: RunningServer, bob: dict[str, Any], content_type: str | None) -> None:
    """What a page of another site can send without a CORS preflight (an HTML form, a simple
    fetch, navigator.sendBeacon) is never application/json."""
    token = bob["id_token"]
    before = token_count(server, token)
    headers = {"Authorization": token, **({"Content-Type": content_type} if content_type else {})}
    body = json.dumps({"name": "no preflight", "scopes": ["reports:read"]}).encode()
    answer = requests.post(f"{server.url}/tokens", data=body, headers=headers, timeout=30)
    assert answer_of(answer) == (415, "unsupported_media_type")
    assert token_count(server, token) == before


def test_a_request_for_another_host_name_is_refused(server: RunningServer, bob: dict[str, Any]) -> None:
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends its own Host."""
    headers = {"Authorization": bob["id_token"], "Host": f"evil.example:{server.port}"}
    assert answer_of(call(server, "GET", "/tokens", headers)) == (421, "misdirected_request")
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", "127.0.0.1"):
        assert call(server, "GET", "/tokens", {**headers, "Host": host}).status_code == 200


def test_it_listens_on_127_0_0_1_only(server: RunningServer) -> None:
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.2", server.port), timeout=5):
        pass
