"""POST /v1/secret-scanning: GitHub's leaked-token reports, signed with a key pair made in the test
and a key list served on 127.0.0.1, through the real handler, on moto and on dynalite.

A signed report revokes each of our tokens in it (caches flushed, TokenLeaked and TokenRevoked
announced) and labels every match; anything not signed by a listed key is a 401 that changes
nothing; the key list is fetched once, again only for an unknown key id, and at most once a
minute."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from support import Console, FakeApiGateway, FakeClock, RecordingPublisher, load_event, table, with_other_secret

from devserver.gateway import LambdaContext, LocalGateway
from token_service.domain.authorizer import Reason
from token_service.domain.token_format import checksum, generate_token
from token_service.http.secret_scanning import KEY_ID_HEADER, SIGNATURE_HEADER
from token_service.storage.repository import TokenRepository

pytestmark = pytest.mark.dynamodb_backends
Match = Callable[..., dict[str, Any]]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def well_formed_unknown() -> str:
    """Prefix, length, alphabet and checksum right; no such token id."""
    return generate_token("lgk").token


def status_of(console: Console, token_id: str) -> str:
    return str(console.request("GET", f"/tokens/{token_id}").json()["status"])


def test_a_signed_report_revokes_a_real_token_flushes_caches_and_announces_the_leak(
    scanning: Any,
    member: Console,
    clock: FakeClock,
    match: Match,
    fake_apigateway: FakeApiGateway,
    lifecycle_events: RecordingPublisher,
    authorizer_app: Any,
) -> None:
    token = member.create_ok("deploy")
    lifecycle_events.sent.clear()
    response = scanning.report([match(token["token"])])
    assert response.status == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == [
        {"token_hash": sha256(token["token"]), "token_type": "lgk_api_token", "label": "true_positive"}
    ]
    assert token["token"] not in response.body
    detail = member.request("GET", f"/tokens/{token['token_id']}").json()
    assert (detail["status"], detail["revoked_by"]) == ("revoked", "leak:content")
    assert authorizer_app.authorizer.decide(f"Bearer {token['token']}", "GET", "/v1/token").reason is Reason.REVOKED
    # Every protected stage flushed, and the stage that served the report: the token API's own
    # cache, which the function's configuration cannot name (the API refers to the function).
    assert {(flush["restApiId"], flush["stageName"]) for flush in fake_apigateway.flushes} == {
        ("a1b2c3d4e5", "dev"),
        ("tokenapi", "local"),
    }
    assert fake_apigateway.resets == [{"ApiId": "h77p9x", "StageName": "$default"}]
    (later,) = [message["MessageBody"]["stages"] for message in fake_apigateway.queued]
    assert "restapis/tokenapi/stages/local" in later
    kinds = [(sent.detail_type, sent.detail.get("kind")) for sent in lifecycle_events.sent]
    assert kinds == [("TokenLeaked", None), ("TokenRevoked", "leak")]
    leaked = lifecycle_events.sent[0].detail
    assert leaked["token_id"] == token["token_id"] and leaked["source"] == "content"
    assert leaked["url"] == "https://github.com/octocat/hello/blob/0123abcd/config.env"
    assert token["token"] not in json.dumps([sent.detail for sent in lifecycle_events.sent])
    # The event samples (events/lifecycle) carry exactly what is published.
    for sent, sample in zip(lifecycle_events.sent, ("token_leaked.json", "token_revoked_leak.json"), strict=True):
        event = load_event(f"lifecycle/{sample}")
        assert (event["detail-type"], set(event["detail"])) == (sent.detail_type, set(sent.detail))


def test_false_positives_change_nothing(
    scanning: Any, member: Console, clock: FakeClock, match: Match, dynamodb: Any, lifecycle_events: RecordingPublisher
) -> None:
    token = member.create_ok("kept")
    wrong_checksum = token["token"][:-1] + ("A" if token["token"][-1] != "A" else "B")
    other_prefix = "ghp_" + token["token"][4:-6] + checksum("ghp_" + token["token"][4:-6])
    right_id_wrong_secret = with_other_secret(token["token"])
    reported = [wrong_checksum, well_formed_unknown(), right_id_wrong_secret, other_prefix, "x" * 58, "lgk_" + "0" * 54]
    before, events = table(dynamodb), len(lifecycle_events.sent)
    response = scanning.report([match(text) for text in reported])
    assert response.status == 200, response.body
    assert response.json() == [
        {"token_hash": sha256(text), "token_type": "lgk_api_token", "label": "false_positive"} for text in reported
    ]
    assert table(dynamodb) == before and len(lifecycle_events.sent) == events
    assert status_of(member, token["token_id"]) == "active"


def test_repeating_a_report_changes_nothing_more(
    scanning: Any, member: Console, clock: FakeClock, match: Match, dynamodb: Any, lifecycle_events: RecordingPublisher
) -> None:
    token = member.create_ok()
    report = [match(token["token"]), match(token["token"], source="commit")]  # twice in one report, too
    first = scanning.report(report)
    assert [verdict["label"] for verdict in first.json()] == ["true_positive", "true_positive"]
    after_first, events = table(dynamodb), len(lifecycle_events.sent)
    second = scanning.report(report)
    assert second.status == 200 and second.json() == first.json()
    assert table(dynamodb) == after_first and len(lifecycle_events.sent) == events
    assert [sent.detail_type for sent in lifecycle_events.sent].count("TokenLeaked") == 1


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda headers: headers.pop(SIGNATURE_HEADER), id="no signature"),
        pytest.param(lambda headers: headers.pop(KEY_ID_HEADER), id="no key id"),
        pytest.param(lambda headers: headers.update({SIGNATURE_HEADER: "not base64!"}), id="signature not base64"),
        pytest.param(lambda headers: headers.update({SIGNATURE_HEADER: "MEQCIA=="}), id="signature not DER"),
        pytest.param(lambda headers: headers.update({SIGNATURE_HEADER: "A" * 500}), id="signature too long"),
        pytest.param(lambda headers: headers.update({KEY_ID_HEADER: "0" * 64}), id="unknown key id"),
        pytest.param(lambda headers: headers.update({KEY_ID_HEADER: "k" * 300}), id="key id too long"),
    ],
)
def test_a_report_without_a_valid_signature_is_401_and_changes_nothing(
    scanning: Any,
    member: Console,
    clock: FakeClock,
    match: Match,
    dynamodb: Any,
    spoil: Callable[[dict[str, str]], object],
    lifecycle_events: RecordingPublisher,
) -> None:
    token = member.create_ok()
    body = json.dumps([match(token["token"])]).encode()
    headers = scanning.signer.headers(body)
    spoil(headers)
    before, events = table(dynamodb), len(lifecycle_events.sent)
    response = scanning.post(body, headers)
    assert response.status == 401, response.body
    assert response.json()["error"]["code"] == "not_authenticated"
    assert token["token"] not in response.body
    assert table(dynamodb) == before and len(lifecycle_events.sent) == events


def test_a_signature_of_another_body_or_by_another_key_is_401(
    scanning: Any, member: Console, clock: FakeClock, match: Match, dynamodb: Any, new_signer: Callable[[], Any]
) -> None:
    token = member.create_ok()
    body = json.dumps([match(token["token"])]).encode()
    other_body = json.dumps([match(well_formed_unknown())]).encode()
    before = table(dynamodb)
    tampered = scanning.post(body, scanning.signer.headers(other_body))
    stranger = new_signer()
    unlisted = scanning.post(body, {**stranger.headers(body), KEY_ID_HEADER: scanning.signer.key_id})
    assert (tampered.status, unlisted.status) == (401, 401)
    assert table(dynamodb) == before
    assert status_of(member, token["token_id"]) == "active"


def test_the_key_list_is_fetched_once_and_again_once_for_an_unknown_key_at_most_each_minute(
    scanning: Any, key_server: Any, member: Console, clock: FakeClock, match: Match, new_signer: Callable[[], Any]
) -> None:
    body = json.dumps([match(well_formed_unknown())]).encode()
    assert scanning.post(body).status == 200
    assert scanning.post(body).status == 200
    assert key_server.fetches == 1  # cached in the function's memory
    unknown = {**scanning.signer.headers(body), KEY_ID_HEADER: "f" * 64}
    scanning.now[0] += 61
    assert scanning.post(body, unknown).status == 401
    assert key_server.fetches == 2  # exactly one refetch for the unknown id
    for _ in range(5):  # made-up ids within the minute: no fetch at all
        assert scanning.post(body, unknown).status == 401
    assert key_server.fetches == 2
    # A new key of the partner's, published after the last fetch: trusted after the minute.
    rotated = new_signer()
    key_server.signers.append(rotated)
    assert scanning.post(body, rotated.headers(body)).status == 401
    scanning.now[0] += 60
    assert scanning.post(body, rotated.headers(body)).status == 200
    assert key_server.fetches == 3
    assert scanning.post(body).status == 200 and key_server.fetches == 3  # known ids: no fetch


def test_an_unreachable_key_list_is_401_and_keeps_the_keys_already_fetched(
    scanning: Any, key_server: Any, member: Console, clock: FakeClock, match: Match
) -> None:
    token = member.create_ok()
    body = json.dumps([match(token["token"])]).encode()
    key_server.status = 503
    assert scanning.post(body).status == 401
    key_server.close()
    scanning.now[0] += 60
    assert scanning.post(body).status == 401  # refused connection
    assert status_of(member, token["token_id"]) == "active"


def test_a_key_list_fetched_before_an_outage_still_verifies(
    scanning: Any, key_server: Any, member: Console, clock: FakeClock, match: Match
) -> None:
    body = json.dumps([match(well_formed_unknown())]).encode()
    assert scanning.post(body).status == 200
    key_server.close()
    scanning.now[0] += 3600
    assert scanning.post(body).status == 200


def test_a_report_of_a_thousand_matches_reads_only_the_well_formed_ones(
    scanning: Any,
    member: Console,
    clock: FakeClock,
    match: Match,
    monkeypatch: pytest.MonkeyPatch,
    fake_apigateway: FakeApiGateway,
) -> None:
    real = [member.create_ok(f"leaked {index}")["token"] for index in range(5)]
    unknown = [well_formed_unknown() for _ in range(45)]
    malformed = [f"lgk_{index:054d}" for index in range(950)]  # wrong checksums: rejected offline
    reads: list[str] = []
    original = TokenRepository.get_token

    def counted(self: TokenRepository, token_id: str) -> Any:
        reads.append(token_id)
        return original(self, token_id)

    monkeypatch.setattr(TokenRepository, "get_token", counted)
    report = [match(token) for token in [*malformed, *unknown, *real]]
    response = scanning.report(report)
    assert response.status == 200, response.body[:300]
    labels = [verdict["label"] for verdict in response.json()]
    assert len(labels) == 1000 and labels.count("true_positive") == 5 and labels[-5:] == ["true_positive"] * 5
    assert len(reads) == 50  # one read per well-formed token, none for the 950 malformed
    assert len(fake_apigateway.queued) == 5  # each revoke's delayed second flush


def test_the_sample_event_is_a_report_in_githubs_format(scanning: Any, clock: FakeClock) -> None:
    event = load_event("secret_scanning.json")
    assert event["httpMethod"] == "POST" and event["resource"] == "/v1/secret-scanning"
    matches = json.loads(event["body"])
    assert isinstance(matches, list) and {"token", "type", "url", "source"} <= set(matches[0])
    body = event["body"].encode()
    event["headers"].update(scanning.signer.headers(body))
    result = scanning.module.lambda_handler(event, LambdaContext(function_name="SecretScanningFunction"))
    assert result["statusCode"] == 200, result["body"]
    assert [verdict["label"] for verdict in json.loads(result["body"])] == ["false_positive"] * len(matches)


def test_through_the_gateway_no_authorizer_and_no_web_acl_challenge(
    scanning: Any, member: Console, clock: FakeClock, match: Match, admin: Console
) -> None:
    """The local API Gateway: the web ACL lets the report through without Bearer credentials
    (its scope-down), and the token authorizer does not run (Auth: Authorizer: NONE)."""
    token = member.create_ok()
    gateway = LocalGateway(lambda _: admin.identity)
    body = json.dumps([match(token["token"])])
    signed = gateway.handle("POST", "/v1/secret-scanning", scanning.signer.headers(body.encode()), {}, body)
    assert signed.status == 200, signed.body
    assert json.loads(signed.body)[0]["label"] == "true_positive"
    unsigned = gateway.handle("POST", "/v1/secret-scanning", {"Content-Type": "application/json"}, {}, body)
    assert unsigned.status == 401 and "WWW-Authenticate" not in unsigned.headers
    assert json.loads(unsigned.body)["error"]["code"] == "not_authenticated"
    # Elsewhere on the token API, no Bearer credentials is still the web ACL's challenge.
    other = gateway.handle("GET", "/v1/token", {}, {}, None)
    assert other.status == 401 and other.headers["WWW-Authenticate"] == 'Bearer realm="api-tokens"'
