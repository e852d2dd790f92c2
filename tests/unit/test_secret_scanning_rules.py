"""Leaked-token reports without a backend: the web ACL leaves POST .../v1/secret-scanning alone and
nothing else, the route has no authorizer and least privilege, the key list is refetched only
for unknown key ids at most once a minute, offline rejects cost no read, the configuration
fails closed, and no other function loads `cryptography`."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from devserver.openapi import openapi_document
from devserver.template import ROOT, api_routes, load_template
from devserver.waf import WafRequest, stage_web_acls
from token_service.config import DEFAULT_KEY_LIST_URL, ConfigurationError, SecretScanningConfig
from token_service.domain.leaks import (
    FALSE_POSITIVE,
    TRUE_POSITIVE,
    KeyListUnavailable,
    ReportedToken,
    SigningKeys,
    judge_report,
)
from token_service.domain.token_format import generate_token
from token_service.http.secret_scanning import parse_key_list

RESOURCES: dict[str, Any] = load_template()["Resources"]
TOKEN = "lgk_" + "A" * 54


def waf(method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    return stage_web_acls()["TokenApi"].inspect(WafRequest(method, path, headers or {}, {}))


# -- the web ACL and the route -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/secret-scanning", "/dev/v1/secret-scanning", "/tokens-api/v1/secret-scanning"])
def test_the_web_acl_lets_a_report_through_without_bearer_credentials(path: str) -> None:
    assert waf("POST", path, {"Content-Type": "application/json"}) is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/secret-scanning"),
        ("DELETE", "/v1/secret-scanning"),
        ("POST", "/v1/secret-scanning/x"),
        ("POST", "/v1/secret-scanning-other"),
        ("POST", "/v1/token"),
        ("GET", "/v1/token"),
    ],
)
def test_the_scope_down_leaves_every_other_request_to_the_challenge(method: str, path: str) -> None:
    answer = waf(method, path)
    assert answer is not None and answer.status == 401 and answer.rule == "NoBearerCredentials"
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api-tokens"'


def test_a_token_in_the_query_string_of_a_report_is_still_refused() -> None:
    acl = stage_web_acls()["TokenApi"]
    answer = acl.inspect(WafRequest("POST", "/v1/secret-scanning", {}, {"access_token": [TOKEN]}))
    assert answer is not None and answer.status == 400


def test_the_route_is_on_the_token_api_without_an_authorizer() -> None:
    (route,) = [route for route in api_routes() if route.resource == "/v1/secret-scanning"]
    assert (route.method, route.api, route.function, route.authorized) == (
        "POST",
        "TokenApi",
        "SecretScanningFunction",
        False,
    )
    assert all(other.authorized for other in api_routes() if other is not route)
    event = RESOURCES["SecretScanningFunction"]["Properties"]["Events"]["ReportLeakedTokens"]["Properties"]
    assert event["Auth"] == {"Authorizer": "NONE"}


def test_the_function_may_read_and_revoke_tokens_announce_and_queue_flushes_only() -> None:
    properties = RESOURCES["SecretScanningFunction"]["Properties"]
    # Its own statements; the audit chain's are the shared managed policy's (test_template_iam.py).
    assert {"Ref": "AuditChainPolicy"} in properties["Policies"]
    inline = [policy for policy in properties["Policies"] if "Statement" in policy]
    statements = [statement for policy in inline for statement in policy["Statement"]]
    grants = {
        (action, str(statement["Resource"]))
        for statement in statements
        for action in statement["Action"]
        if isinstance(statement["Action"], list)
    }
    grants |= {
        (statement["Action"], str(statement["Resource"]))
        for statement in statements
        if isinstance(statement["Action"], str)
    }
    table = str({"GetAtt": "TokensTable.Arn"})
    assert grants == {
        ("dynamodb:GetItem", table),
        ("dynamodb:UpdateItem", table),
        ("events:PutEvents", str({"GetAtt": "TokenEventBus.Arn"})),
        ("sqs:SendMessage", str({"GetAtt": "FlushQueue.Arn"})),
    }
    (dynamodb,) = [statement for statement in statements if "dynamodb:GetItem" in statement["Action"]]
    assert dynamodb["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TOKEN#*"]}}
    variables = properties["Environment"]["Variables"]
    assert variables["EVENT_BUS_NAME"] == {"Ref": "TokenEventBus"}
    assert variables["FLUSH_DIRECTLY"] == "false" and variables["FLUSH_QUEUE_URL"] == {"Ref": "FlushQueue"}
    assert variables["SECRET_SCANNING_KEYS_URL"] == {"Ref": "SecretScanningKeysUrl"}
    parameter = load_template()["Parameters"]["SecretScanningKeysUrl"]
    assert parameter["Default"] == DEFAULT_KEY_LIST_URL
    assert "SecretScanningUrl" in load_template()["Outputs"]


def test_the_document_shows_the_route_with_its_signature_as_its_security() -> None:
    operation = openapi_document()["paths"]["/v1/secret-scanning"]["post"]
    assert operation["security"] == [{"partnerSignature": []}]
    scheme = openapi_document()["components"]["securitySchemes"]["partnerSignature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "Github-Public-Key-Signature")
    headers = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "header"}
    assert headers == {"Github-Public-Key-Identifier"}
    assert {"200", "400", "401", "413", "415", "429", "503"} <= set(operation["responses"])
    assert "headers" not in operation["responses"]["401"]  # no Bearer challenge: no authorizer here


# -- configuration -------------------------------------------------------------------------------


def test_the_key_list_is_githubs_unless_configured() -> None:
    assert SecretScanningConfig.from_environ({}).keys_url == "https://api.github.com/meta/public_keys/secret_scanning"
    local = SecretScanningConfig.from_environ({"SECRET_SCANNING_KEYS_URL": "http://127.0.0.1:8080/keys"})
    assert local.keys_url == "http://127.0.0.1:8080/keys" and local.refetch_seconds == 60


@pytest.mark.parametrize(
    "url", ["http://keys.example.com/list", "file:///etc/passwd", "ftp://x/y", "https://", "keys", "http://127.0.0.2/"]
)
def test_a_key_list_url_that_is_not_https_fails_at_start_up(url: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        SecretScanningConfig.from_environ({"SECRET_SCANNING_KEYS_URL": url})
    assert raised.value.variable == "SECRET_SCANNING_KEYS_URL"


# -- the signing keys ------------------------------------------------------------------------------


class FakeList:
    def __init__(self) -> None:
        self.keys = {"k1": "PEM-1"}
        self.fetches = 0
        self.down = False

    def __call__(self) -> dict[str, str]:
        self.fetches += 1
        if self.down:
            raise KeyListUnavailable()
        return dict(self.keys)


def signing_keys(listing: FakeList, now: list[float]) -> SigningKeys:
    return SigningKeys(listing, lambda pem, signature, message: signature == pem.encode(), 60, lambda: now[0])


def test_known_keys_never_refetch_and_unknown_ones_at_most_once_a_minute() -> None:
    listing, now = FakeList(), [0.0]
    keys = signing_keys(listing, now)
    assert keys.verifies("k1", b"PEM-1", b"body") and listing.fetches == 1
    assert not keys.verifies("k1", b"PEM-2", b"body") and listing.fetches == 1
    for _ in range(100):
        assert not keys.verifies("made-up", b"PEM-1", b"body")
    assert listing.fetches == 1  # within the minute of the first fetch
    now[0] = 60
    listing.keys["k2"] = "PEM-2"
    assert keys.verifies("k2", b"PEM-2", b"body") and listing.fetches == 2
    del listing.keys["k1"]
    now[0] = 200
    assert not keys.verifies("k3", b"x", b"body") and listing.fetches == 3
    assert not keys.verifies("k1", b"PEM-1", b"body")  # withdrawn by the partner: no longer trusted


def test_a_failed_fetch_keeps_the_keys_and_fails_closed() -> None:
    listing, now = FakeList(), [0.0]
    listing.down = True
    keys = signing_keys(listing, now)
    assert not keys.verifies("k1", b"PEM-1", b"body")
    listing.down = False
    assert not keys.verifies("k1", b"PEM-1", b"body") and listing.fetches == 1  # no retry within the minute
    now[0] = 60
    assert keys.verifies("k1", b"PEM-1", b"body")
    listing.down, now[0] = True, 600
    assert not keys.verifies("other", b"", b"") and keys.verifies("k1", b"PEM-1", b"body")


def test_a_malformed_key_or_signature_is_not_verified() -> None:
    def check(pem: str, signature: bytes, message: bytes) -> bool:
        raise ValueError("not a P-256 key")

    keys = SigningKeys(lambda: {"k1": "junk"}, check, 60)
    assert keys.verifies("k1", b"sig", b"body") is False


@pytest.mark.parametrize(
    "document",
    [None, [], {}, {"public_keys": {}}, {"public_keys": [1]}, {"public_keys": [{"key_identifier": "k", "key": 3}]}],
)
def test_a_key_list_of_another_shape_is_refused(document: Any) -> None:
    with pytest.raises(ValueError, match="public_keys"):
        parse_key_list(document)


def test_the_key_list_format_is_githubs() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkw...\n-----END PUBLIC KEY-----\n"
    document = {"public_keys": [{"key_identifier": "90a4", "key": pem, "is_current": True}]}
    assert parse_key_list(document) == {"90a4": pem}


# -- verdicts ------------------------------------------------------------------------------------


class CountingRevoker:
    def __init__(self, ours: set[str]) -> None:
        self.ours, self.calls = ours, []

    def revoke_leaked_token(self, presented: str, url: str | None, source: str | None) -> bool:
        self.calls.append(presented)
        return presented in self.ours


def test_offline_rejects_cost_nothing_and_each_candidate_is_checked_once() -> None:
    ours = generate_token("lgk").token
    unknown = generate_token("lgk").token
    reported = [ReportedToken(text, "t") for text in ("x", TOKEN, ours, "lgk_" + "0" * 54, unknown, ours)]
    reported += [ReportedToken(generate_token("abc").token, "t")]  # another prefix
    revoker = CountingRevoker({ours})
    verdicts = judge_report(reported, "lgk", revoker)
    assert sorted(revoker.calls) == sorted([ours, unknown])
    labels = [verdict.label for verdict in verdicts]
    assert labels == [
        FALSE_POSITIVE,
        FALSE_POSITIVE,
        TRUE_POSITIVE,
        FALSE_POSITIVE,
        FALSE_POSITIVE,
        TRUE_POSITIVE,
        FALSE_POSITIVE,
    ]
    assert all(len(verdict.token_hash) == 64 and ours not in verdict.token_hash for verdict in verdicts)


def test_a_failed_check_fails_the_report_once_the_others_are_done() -> None:
    tokens = [generate_token("lgk").token for _ in range(20)]

    class Failing(CountingRevoker):
        def revoke_leaked_token(self, presented: str, url: str | None, source: str | None) -> bool:
            super().revoke_leaked_token(presented, url, source)
            if presented == tokens[3]:
                raise RuntimeError("store unavailable")
            return True

    revoker = Failing(set())
    with pytest.raises(RuntimeError):
        judge_report([ReportedToken(token, "t") for token in tokens], "lgk", revoker, workers=4)
    assert sorted(revoker.calls) == sorted(tokens)


# -- cold starts -----------------------------------------------------------------------------------

PROBE = """
import importlib.util, sys
sys.modules["OpenSSL"] = None  # as in the layer, which ships no pyOpenSSL (botocore tries it, then cryptography)
from pathlib import Path
for folder in sorted(Path("functions").iterdir()):
    if folder.name == "secret_scanning" or not (folder / "app.py").exists():
        continue
    spec = importlib.util.spec_from_file_location("probe_" + folder.name, folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    if "cryptography" in sys.modules:
        print("loaded by", folder.name)
        break
else:
    sys.path.insert(0, "functions/secret_scanning")
    import app
    print("only secret_scanning" if "cryptography" in sys.modules else "nobody")
"""


def test_only_the_report_function_loads_cryptography() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "layers" / "tokens"),
        "USER_POOL_ID": "us-east-1_example",
        "SECRET_SCANNING_KEYS_URL": "http://127.0.0.1:9/keys",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "only secret_scanning", result.stdout + result.stderr[-2000:]
    assert "pyopenssl" not in (ROOT / "layers" / "tokens" / "requirements.txt").read_text().lower()
