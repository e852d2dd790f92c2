"""Fixtures of the leaked-token report tests: a signing key pair made here, its key list served by
a local HTTP server on 127.0.0.1 (never the internet), and the report function wired to it."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devserver.gateway import HttpResponse, LambdaContext, find_route, load_handler_module, proxy_event
from devserver.template import ROOT
from token_service.domain.leaks import SigningKeys
from token_service.http.secret_scanning import KEY_ID_HEADER, SIGNATURE_HEADER, key_list_fetcher, signed_report_handler

PATH = "/v1/secret-scanning"


@dataclass
class Signer:
    """A P-256 key pair, as GitHub holds one; `key_id` names it in the key list."""

    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @property
    def pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.pem.encode()).hexdigest()

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes, key_id: str | None = None) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            KEY_ID_HEADER: key_id or self.key_id,
            SIGNATURE_HEADER: self.sign(body),
        }


class KeyServer:
    """Serves a key list in GitHub's format on 127.0.0.1; counts the fetches; `status` other
    than 200 makes it fail."""

    def __init__(self, signers: list[Signer]) -> None:
        self.signers = signers
        self.fetches = 0
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps(
                    {
                        "public_keys": [
                            {"key_identifier": signer.key_id, "key": signer.pem, "is_current": index == 0}
                            for index, signer in enumerate(server.signers)
                        ]
                    }
                ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/meta/public_keys/secret_scanning"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def new_signer() -> Callable[[], Signer]:
    """Another key pair (one the key list does not name, until a test adds it)."""
    return Signer


@pytest.fixture
def key_server(signer: Signer) -> Iterator[KeyServer]:
    server = KeyServer([signer])
    yield server
    server.close()


@dataclass
class Scanning:
    """The report function, its signing keys reading `key_server`'s list (refetched at most
    every `refetch_seconds` of `now`, a clock the test moves)."""

    module: Any
    keys: SigningKeys
    signer: Signer
    now: list[float]

    def post(
        self, body: bytes | str, headers: dict[str, str] | None = None, event: dict[str, Any] | None = None
    ) -> HttpResponse:
        """`body` signed by the listed key (unless `headers` says otherwise); `event` overrides fields of the event."""
        raw = body if isinstance(body, bytes) else body.encode()
        found = find_route("POST", PATH)
        assert found is not None
        route, parameters = found
        request = proxy_event(
            route,
            PATH,
            parameters,
            headers=self.signer.headers(raw) if headers is None else headers,
            body=raw.decode("utf-8", "surrogateescape"),
        )
        request.update(event or {})
        result = self.module.lambda_handler(request, LambdaContext(function_name="SecretScanningFunction"))
        return HttpResponse(int(result["statusCode"]), result["headers"], result["body"])

    def report(self, matches: list[dict[str, Any]], headers: dict[str, str] | None = None) -> HttpResponse:
        return self.post(json.dumps(matches), headers)


@pytest.fixture
def scanning(dynamodb: object, signer: Signer, key_server: KeyServer, monkeypatch: pytest.MonkeyPatch) -> Scanning:
    module = load_handler_module(ROOT / "functions" / "secret_scanning", "app.lambda_handler")
    now = [1000.0]
    keys = SigningKeys(key_list_fetcher(key_server.url, 2), module.ecdsa_p256_sha256, 60, clock=lambda: now[0])
    monkeypatch.setattr(module, "signing_keys", keys)
    monkeypatch.setattr(module, "lambda_handler", signed_report_handler(module.app, keys, sdk_tracing=False))
    return Scanning(module, keys, signer, now)


@pytest.fixture
def match() -> Callable[..., dict[str, Any]]:
    def make(token: str, **fields: Any) -> dict[str, Any]:
        return {
            "token": token,
            "type": "lgk_api_token",
            "url": "https://github.com/octocat/hello/blob/0123abcd/config.env",
            "source": "content",
            **fields,
        }

    return make
