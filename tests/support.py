"""What the tests share besides fixtures (those are in the conftest files): the fake clock,
seeders, response assertions, the console client, authorizer events, and the dev server
process."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import requests
from botocore.exceptions import ClientError
from pydantic import BaseModel, Field

from devserver.gateway import HttpResponse, Identity, LambdaContext, console_request, load_handler_module
from devserver.template import ROOT
from token_service import wiring
from token_service.domain.cleanup import CleanupRun, RunReport
from token_service.domain.identity import Caller
from token_service.domain.lifecycle import Schedule
from token_service.domain.records import TokenRecord
from token_service.domain.service import CreatedToken, TokenService
from token_service.domain.token_format import ALPHABET, checksum, generate_token, token_regex
from token_service.http.models import CreateTokenRequest
from token_service.storage.attribute_values import deserialize, serialize
from token_service.storage.audit import AuditLog
from token_service.storage.items import EXPIRY_INDEX, token_item, token_key
from token_service.storage.lifecycle_store import LifecycleStore
from token_service.storage.repository import TokenRepository

TABLE_NAME = os.environ["TABLE_NAME"]


TOKEN_IN_TEXT = re.compile(token_regex("lgk").replace(r"\b", ""))


class FakeClock:
    """A settable clock: `wiring.get_service().clock = FakeClock(...)` (epoch seconds or datetime)."""

    def __init__(self, moment: float | datetime) -> None:
        self.set(moment)

    def __call__(self) -> float:
        return self.now

    def set(self, moment: float | datetime) -> None:
        self.now = moment.timestamp() if isinstance(moment, datetime) else float(moment)


T0 = 1_900_000_000.0  # the default fake "now" (2030-03-17)


def seed_tokens(
    dynamodb: Any,
    owner: Caller,
    count: int,
    *,
    start: float = T0,
    expires_at: int | None = None,
    revoked_at: int | None = None,
) -> list[str]:
    """Writes token items exactly as the service stores them, without its per-create cost;
    oldest first, 10 ms apart from `start`. Expiry: `expires_at`, else 90 days after creation."""
    settings = wiring.get_service().settings
    retention = settings.retention_seconds
    ids = []
    for index in range(count):
        created = start + index * 0.01
        record = TokenRecord.issue(
            generate_token("lgk"),
            org_id=owner.org_id,
            owner_id=owner.user_id,
            name=f"seeded {index}",
            scopes=("reports:read",),
            now=created,
            expires_at=expires_at if expires_at is not None else int(created) + 90 * 86_400,
            retention_seconds=retention,
            schedule=settings.schedule,
        )
        if revoked_at is not None:
            record = record.revoked(revoked_at, owner.user_id, retention)
        dynamodb.put_item(TableName=TABLE_NAME, Item=serialize(token_item(record)))
        ids.append(record.token_id)
    return ids


def field_problems(response: HttpResponse) -> dict[str, str]:
    return {problem["field"]: problem["reason"] for problem in response.json()["error"].get("fields", [])}


def assert_invalid(response: HttpResponse, field: str) -> str:
    """A 400 invalid_request naming `field`; returns its reason."""
    assert response.status == 400, response.body
    assert response.json()["error"]["code"] == "invalid_request"
    problems = field_problems(response)
    assert field in problems, problems
    assert problems[field]
    return problems[field]


@dataclass(frozen=True)
class Console:
    """Calls the management API as one user, through the real handlers."""

    identity: Identity

    def request(self, method: str, path: str, **kwargs: object) -> HttpResponse:
        return console_request(self.identity, method, path, **kwargs)  # type: ignore[arg-type]

    def create(self, name: str = "ci token", scopes: list[str] | None = None, **fields: object) -> HttpResponse:
        body = {"name": name, "scopes": scopes or ["reports:read"], **fields}
        return self.request("POST", "/tokens", body=body)

    def create_ok(self, name: str = "ci token", scopes: list[str] | None = None, **fields: object) -> dict:
        response = self.create(name, scopes, **fields)
        assert response.status == 201, response.body
        return response.json()


ORG = "org-acme"


OTHER_ORG = "org-globex"


# -- the token authorizer ------------------------------------------------------------------------

EVENTS = ROOT / "events"


TOKEN_PATTERN = re.compile(token_regex("lgk"))


METHOD_ARN_PREFIX = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3d4e5/dev"


def mint(scopes: list[str], *, user: str = "user-member", role: str = "member", **fields: Any) -> str:
    caller = Caller(user_id=user, org_id="org-acme", role=role)
    request = CreateTokenRequest(name="authorizer test", scopes=scopes, **fields).command()
    return wiring.get_service().create_token(caller, request).secret


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def token_event(token: str | None, method: str = "GET", path: str = "v1/reports") -> dict[str, Any]:
    event = load_event("authorizer_token.json")
    event["authorizationToken"] = f"Bearer {token}" if token is not None else None
    event["methodArn"] = f"{METHOD_ARN_PREFIX}/{method}/{path}"
    return event


def request_event(token: str, method: str = "POST", resource: str = "/v1/import/builds") -> dict[str, Any]:
    event = load_event("authorizer_request.json")
    event["headers"]["Authorization"] = f"Bearer {token}"
    event["httpMethod"] = method
    event["resource"] = event["path"] = resource
    event["methodArn"] = f"{METHOD_ARN_PREFIX}/{method}{resource}"
    return event


def http_api_event(token: str, method: str = "GET", path: str = "/v1/reports") -> dict[str, Any]:
    event = load_event("authorizer_http_v2.json")
    event["headers"]["authorization"] = f"Bearer {token}"
    event["requestContext"]["http"].update(method=method, path=path)
    return event


def authorize(app: Any, event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = app.lambda_handler(event, LambdaContext(function_name="AuthorizerFunction"))
    return result


def with_other_secret(token: str) -> str:
    """Same prefix and id, different secret, valid checksum: only the database can tell."""
    body = token[:-6]
    flipped = ALPHABET[(ALPHABET.index(body[-1]) + 1) % len(ALPHABET)]
    tampered = body[:-1] + flipped
    return tampered + checksum(tampered)


PROTECTED_APIS = "restapis/a1b2c3d4e5/stages/dev,apis/h77p9x/stages/$default"
FLUSH_QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/api-tokens-flush"


class FakeApiGateway:
    """API Gateway's two cache calls and SQS's SendMessage, as the service's flusher makes them.
    `failing` names the calls that answer with TooManyRequestsException."""

    def __init__(self) -> None:
        self.flushes: list[dict[str, str]] = []  # REST: FlushStageAuthorizersCache
        self.resets: list[dict[str, str]] = []  # HTTP APIs: ResetAuthorizersCache
        self.queued: list[dict[str, Any]] = []  # SendMessage to the flush queue
        self.failing: set[str] = set()

    def __call__(self, service: str) -> FakeApiGateway:  # the flusher's client factory
        return self

    def _call(self, name: str, log: list[Any], kwargs: dict[str, Any]) -> None:
        if name in self.failing:
            raise ClientError({"Error": {"Code": "TooManyRequestsException"}}, name)
        log.append(kwargs)

    def flush_stage_authorizers_cache(self, **kwargs: str) -> None:
        self._call("FlushStageAuthorizersCache", self.flushes, kwargs)

    def reset_authorizers_cache(self, **kwargs: str) -> None:
        self._call("ResetAuthorizersCache", self.resets, kwargs)

    def send_message(self, **kwargs: Any) -> None:
        self._call("SendMessage", self.queued, {**kwargs, "MessageBody": json.loads(kwargs["MessageBody"])})


def self_service_event(method: str, authorizer_context: dict[str, Any]) -> dict[str, Any]:
    event = load_event("token_self_get.json" if method == "GET" else "token_self_revoke.json")
    event["requestContext"]["authorizer"] = authorizer_context
    return event


def call_self_service(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    module = load_handler_module(ROOT / "functions" / "token_self", "app.lambda_handler")
    result = module.lambda_handler(event, LambdaContext(function_name="TokenSelfFunction"))
    return result["statusCode"], json.loads(result["body"])


# -- the dev server as a process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    """The server process, with its output read continuously: each request writes an access
    log line, and a pipe nobody reads would block the server after ~64 KB of them."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self.lines.extend, args=(self.process.stdout,), daemon=True)
        self._reader.start()

    def output(self) -> str:
        return "".join(self.lines)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> HttpResponse:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
                return HttpResponse(response.status, dict(response.headers), response.read().decode())
        except urllib.error.HTTPError as error:
            return HttpResponse(error.code, dict(error.headers), error.read().decode())

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns the exit code and everything it printed."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code, self.output()


# -- signing in to the dev server's local user pool ------------------------------------------------

SEED_PASSWORD = "Local-Test-Passw0rd"  # DEV_USER_PASSWORD of the test servers: every seeded user's
SEEDED = {  # the seeded users (devserver/cognito.py): email -> (organisation, role)
    "alice@acme.example": ("org-acme", "admin"),
    "bob@acme.example": ("org-acme", "member"),
    "carol@acme.example": ("org-acme", "viewer"),
    "dave@globex.example": ("org-globex", "admin"),
    "erin@globex.example": ("org-globex", "member"),
    "frank@globex.example": ("org-globex", "viewer"),
    "nora@newcomer.example": (None, None),
}


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(config: dict[str, Any], challenge: str, state: str = "state-1") -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": config["clientId"],
        "redirect_uri": config["redirectUri"],
        "scope": "openid email profile",
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def sign_in(
    server: RunningServer, username: str, password: str = SEED_PASSWORD, http: requests.Session | None = None
) -> dict[str, Any]:
    """The console's sign-in, over HTTP: /oauth2/authorize, the sign-in form, the code for tokens
    at /oauth2/token. Returns the token endpoint's answer (id_token, access_token, ...)."""
    http = http or requests.Session()
    config = http.get(f"{server.url}/config.json", timeout=30).json()
    verifier, challenge = pkce_pair()
    query = authorize_query(config, challenge)
    answer = http.get(f"{server.url}/oauth2/authorize", params=query, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    if location.startswith("/login"):
        answer = http.post(
            server.url + location,
            data={"username": username, "password": password},
            headers={"Origin": server.url},
            allow_redirects=False,
            timeout=30,
        )
        assert answer.status_code == 302, answer.text
        location = answer.headers["Location"]
    redirect = urllib.parse.urlsplit(location)
    callback = urllib.parse.parse_qs(redirect.query)
    assert callback["state"] == ["state-1"], location
    tokens = http.post(
        f"{server.url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": config["clientId"],
            "code": callback["code"][0],
            "redirect_uri": config["redirectUri"],
            "code_verifier": verifier,
        },
        timeout=30,
    )
    assert tokens.status_code == 200, tokens.text
    result: dict[str, Any] = tokens.json()
    return result


@functools.cache  # building the private key checks it, which takes about a second
def moto_signing_key() -> Any:
    """The private key every moto user pool signs its tokens with (moto ships it, and serves its
    public half as each pool's JWKS, kid "dummy"): tokens made with it are ones the local pool
    could have issued, with whatever claims a test needs (expired, another pool's issuer...)."""
    from jwt.algorithms import RSAAlgorithm
    from moto.utilities.utils import load_resource

    return RSAAlgorithm.from_jwk(json.dumps(load_resource("cognitoidp/resources/jwks-private.json")))


def make_token(claims: dict[str, Any], key: Any = None, algorithm: str = "RS256", kid: str = "dummy") -> str:
    """A JWT with these claims, signed with `key` (default: the local pool's own)."""
    return jwt.encode(claims, key if key is not None else moto_signing_key(), algorithm=algorithm, headers={"kid": kid})


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def start_server(port: int | None = None, extra_args: list[str] | None = None) -> RunningServer:
    port = port or free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"DYNAMODB_ENDPOINT_URL", "TABLE_NAME"}}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "devserver", "--port", str(port), *(extra_args or [])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = RunningServer(process, port)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dev server exited: {server.output()}")
        try:
            if server.request("GET", "/_dev/health").status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("dev server did not start within 60 s")


# -- over HTTP, against the dev server ------------------------------------------------------

FUZZ_ORG = "org-fuzz"  # PUT /settings is fuzzed here: nothing else relies on this org's policy
SELF_ORG = "org-fuzz-self"  # owns the tokens that /v1/token is called with

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


CHROMEDRIVER = shutil.which("chromedriver")


def console_identity(org: str = FUZZ_ORG, role: str = "admin", user: str | None = None) -> dict[str, str]:
    return {"X-Dev-User-Id": user or f"fuzz-{uuid.uuid4().hex[:12]}", "X-Dev-Org-Id": org, "X-Dev-Role": role}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def mint_over_http(
    server: RunningServer, org: str = SELF_ORG, scopes: tuple[str, ...] = ("reports:read",)
) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/tokens",
        json={"name": "over http", "scopes": list(scopes)},
        headers=console_identity(org=org),
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


# -- the scheduled cleanup ----------------------------------------------------------------------

BUS_NAME = os.environ["EVENT_BUS_NAME"]


DAY = 86_400


HOUR = 3_600


RETENTION = 30 * DAY


T = int(datetime(2030, 3, 20, 12, 0, tzinfo=UTC).timestamp())  # the expiry most tests revolve around


CREATED = T - 60 * DAY  # when their tokens were created


MEMBER = Caller("user-member", "org-acme", "member")


ADMIN = Caller("user-admin", "org-acme", "admin")


SECRET_PATTERN = re.compile(token_regex("lgk"))


DETAIL_FIELDS = {"org_id", "owner_id", "token_id", "name", "expires_at"}


EXPIRED = "expired"  # notice key of TokenExpired; ExpiringSoon notices are keyed by their days


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Sent:
    at: int  # the time of the run that published it
    detail_type: str
    detail: dict[str, Any]

    @property
    def key(self) -> tuple[str, int | str]:
        if self.detail_type == "TokenExpired":
            return self.detail["token_id"], EXPIRED
        assert self.detail_type == "TokenExpiringSoon", self.detail_type
        return self.detail["token_id"], self.detail["days_before_expiry"]


@dataclass
class RecordingPublisher:
    """Stands in for EventBridge; `reject` refuses that many publishes first (returns False)."""

    reject: int = 0
    now: int = 0
    sent: list[Sent] = field(default_factory=list)
    rejected: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, detail_type: str, detail: dict[str, Any]) -> bool:
        with self.lock:
            if self.reject:
                self.reject -= 1
                self.rejected.append((detail_type, detail))
                return False
            self.sent.append(Sent(self.now, detail_type, json.loads(json.dumps(detail))))
            return True

    def keys(self) -> Counter[tuple[str, int | str]]:
        return Counter(sent.key for sent in self.sent)

    def of(self, token_id: str) -> list[Sent]:
        return [sent for sent in self.sent if sent.detail["token_id"] == token_id]

    def notices(self, token_id: str) -> list[int | str]:
        return [sent.key[1] for sent in self.of(token_id)]


class Cleanup:
    """Runs the cleanup against the test table at chosen times, recording what it publishes."""

    def __init__(self, service: TokenService, schedule: Schedule | None = None, lookback_days: int = 90) -> None:
        self.client = service.repository.client
        self.store = LifecycleStore(TABLE_NAME, self.client)
        self.tokens = TokenRepository(TABLE_NAME, self.client)
        self.retention_seconds = service.settings.retention_seconds
        self.publisher = RecordingPublisher()
        self.schedule = schedule or service.settings.schedule
        self.lookback_days = lookback_days
        self.reports: list[RunReport] = []

    def run(
        self,
        at: int,
        store: LifecycleStore | None = None,
        publisher: RecordingPublisher | None = None,
        audit: AuditLog | None = None,
    ) -> RunReport:
        publisher = publisher or self.publisher
        publisher.now = at
        report = CleanupRun(
            store or self.store,
            publisher,
            self.schedule,
            clock=lambda: at,
            lookback_days=self.lookback_days,
            unused=self.tokens,
            audit=audit,
            retention_seconds=self.retention_seconds,
        ).run()
        self.reports.append(report)
        return report

    def item(self, token_id: str) -> dict[str, Any] | None:
        response = self.client.get_item(TableName=TABLE_NAME, Key=serialize(token_key(token_id)), ConsistentRead=True)
        return deserialize(response["Item"]) if "Item" in response else None

    def exists(self, token_id: str) -> bool:
        return self.item(token_id) is not None

    def index_entries(self) -> list[dict[str, Any]]:
        """Everything in the ByExpiry index (what the cleanup could ever read)."""
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": TABLE_NAME, "IndexName": EXPIRY_INDEX.name}
        while True:
            page = self.client.scan(**params)
            entries.extend(deserialize(raw) for raw in page["Items"])
            if "LastEvaluatedKey" not in page:
                return entries
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def create(
    svc: TokenService, expires_at: int, *, at: int = CREATED, name: str = "deploy bot", caller: Caller = MEMBER
) -> CreatedToken:
    """Creates a token through the service, as the console does, at time `at`."""
    svc.clock = FakeClock(at)
    request = CreateTokenRequest(name=name, scopes=["reports:read"], expires_at=iso(expires_at)).command()
    created = svc.create_token(caller, request)
    assert created.record.expires_at == expires_at
    return created


def owner(index: int) -> Caller:
    """Spreads many tokens over several users (each may hold at most 50 active tokens)."""
    return Caller(f"user-{index % 4}", "org-acme", "member")


def revoke(svc: TokenService, token_id: str, at: int) -> None:
    svc.clock = FakeClock(at)
    assert svc.revoke_token(ADMIN, token_id).newly_revoked


def hourly(start: int, end: int, step: int = HOUR) -> list[int]:
    return list(range(start, end + 1, step))


def assert_no_secret(sent: list[Sent], created: list[CreatedToken]) -> None:
    text = json.dumps([[item.detail_type, item.detail] for item in sent])
    assert not SECRET_PATTERN.search(text)
    assert "secret_hash" not in text
    for token in created:
        assert token.secret not in text
        assert token.record.secret_hash not in text
        assert token.record.secret_hash[:16] not in text


# -- handler-tier worlds and helpers ---------------------------------------------------------

TARGETS = ["own", "same_org", "other_org"]


SAME_ORG_OWNER = {ORG: "user-member-2", OTHER_ORG: "user-globex-member"}


class AccessWorld:
    """One caller, and one token each: the caller's own, a colleague's, another org's."""

    def __init__(self, console: Console, dynamodb: Any) -> None:
        self.console = console
        self.dynamodb = dynamodb
        identity = console.identity
        self.caller = Caller(identity.user_id, identity.org_id, identity.role)
        self.is_admin = identity.role == "admin"
        other_org = OTHER_ORG if identity.org_id == ORG else ORG
        owners = {
            "own": self.caller,
            "same_org": Caller(SAME_ORG_OWNER[identity.org_id], identity.org_id, "member"),
            "other_org": Caller(SAME_ORG_OWNER[other_org], other_org, "member"),
        }
        service = wiring.get_service()
        self.owner: dict[str, str] = {}
        self.token_id: dict[str, str] = {}
        for target, owner in owners.items():
            created = service.create_token(
                owner, CreateTokenRequest(name=f"{target} token", scopes=["reports:read"]).command()
            )
            self.owner[target] = owner.user_id
            self.token_id[target] = created.record.token_id
        self.before = {target: self.item(target) for target in TARGETS}

    def item(self, target: str) -> dict[str, Any]:
        response = self.dynamodb.get_item(
            TableName=TABLE_NAME,
            Key=serialize({"pk": f"TOKEN#{self.token_id[target]}", "sk": "TOKEN"}),
            ConsistentRead=True,
        )
        assert "Item" in response, f"the {target} token item disappeared"
        return deserialize(response["Item"])

    def may_act_on(self, target: str) -> bool:
        return target == "own" or (target == "same_org" and self.is_admin)

    def assert_state(self, revoked: set[str]) -> None:
        """The targets in `revoked` are now revoked by the caller; every other item is untouched."""
        for target in TARGETS:
            item = self.item(target)
            if target in revoked:
                assert item["revoked_by"] == self.caller.user_id
                assert "revoked_at" in item
            else:
                assert item == self.before[target], f"the {target} token was modified"

    def nonexistent_answer(self, method: str) -> tuple[int, dict[str, str], Any]:
        response = self.console.request(method, f"/tokens/{generate_token('lgk').token_id}")
        return response.status, response.headers, response.json()


CAP = 3


def set_cap(admin: Console, cap: int) -> None:
    body = {"max_lifetime_days": 366, "default_lifetime_days": 90, "max_active_tokens_per_user": cap}
    response = admin.request("PUT", "/settings", body=body)
    assert response.status == 200, response.body


def table(dynamodb: Any) -> list[dict[str, Any]]:
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=TABLE_NAME, ConsistentRead=True):
        items.extend(deserialize(raw) for raw in page["Items"])
    return sorted(items, key=lambda item: (item["pk"], item["sk"]))


OTHER_MEMBER = Caller("user-member-2", "org-acme", "member")


GLOBEX_MEMBER = Caller("user-member", "org-globex", "member")  # same user id, other organisation


@dataclass
class FaultWorld:
    dynamodb: Any
    admin: Console
    member: Console
    fresh: int = 0

    def new_member(self) -> Console:
        self.fresh += 1
        return Console(Identity(user_id=f"user-fresh-{self.fresh}", org_id=self.member.identity.org_id, role="member"))

    def token_of(self, console: Console) -> str:
        return str(console.create_ok("target")["token_id"])


# -- the REST resolver's test models ---------------------------------------------------------


class ItemPath(BaseModel):
    item_id: str = Field(max_length=8)


class ItemQuery(BaseModel):
    limit: int = Field(10, ge=1, description="Page size.")
    deleted: bool = False


class ItemBody(BaseModel):
    name: str


class ItemView(BaseModel):
    item_id: str
    name: str
