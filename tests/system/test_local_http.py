"""The dev server's HTTP layer, over raw sockets: framing, limits, charsets, methods and paths
behave as HTTP (RFC 9110, 9112) and API Gateway specify, and a request whose body did not
arrive whole never reaches a handler."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from support import RunningServer

from devserver.template import load_template
from token_service.http.proxy import MAX_BODY_CHARACTERS

READ_TIMEOUT = 1.0  # the server's read timeout in this module (DEV_READ_TIMEOUT_SECONDS)
pytestmark = pytest.mark.devserver(env={"DEV_READ_TIMEOUT_SECONDS": str(READ_TIMEOUT)})
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit
MISSING_ROUTE = {"error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}}


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == "application/json", self
        return json.loads(self.body)


@dataclass
class Exchange:
    responses: list[RawResponse]
    seconds: float

    @property
    def only(self) -> RawResponse:
        assert len(self.responses) == 1, self.responses
        return self.responses[0]


def identity() -> dict[str, str]:
    return {"X-Dev-User-Id": f"http-{uuid.uuid4().hex[:12]}", "X-Dev-Org-Id": "org-http", "X-Dev-Role": "member"}


def create_body(name: str = "over raw http") -> bytes:
    return json.dumps({"name": name, "scopes": ["reports:read"]}).encode()


def message(
    method: str,
    target: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    fields = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    head = f"{method} {target} {version}\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields)
    return head.encode("latin-1") + b"\r\n" + body


def chunked(*chunks: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n" + trailer + b"\r\n"


def exchange(server: RunningServer, data: bytes, *, half_close: bool = False, head: bool = False) -> Exchange:
    """Sends `data` on a new connection (then shuts its sending side if `half_close`; else the
    connection stays open, as a client still sending would) and reads until the server closes it.
    Every byte received must parse as complete responses."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(data)
        if half_close:
            connection.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    return Exchange(parse_responses(bytes(received), head), time.monotonic() - started)


def parse_responses(data: bytes, head: bool = False) -> list[RawResponse]:
    responses = []
    while data:
        header_block, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"an incomplete response: {header_block[:200]!r}"
        status_line, *lines = header_block.decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        length = 0 if head else int(headers.get("content-length", "0"))
        assert len(data) >= length, f"a body shorter than its Content-Length: {data[:200]!r}"
        responses.append(RawResponse(int(status), headers, data[:length]))
        data = data[length:]
    return responses


def credentials(path: str, token: str) -> dict[str, str]:
    """What a request needs to get past the token API's web ACL to API Gateway itself: a token
    for /v1/ paths, a console identity for the others."""
    return {"Authorization": f"Bearer {token}"} if path.startswith("/v1/") else identity()


def tokens_of(server: RunningServer, who: dict[str, str]) -> list[dict[str, Any]]:
    response = server.request("GET", "/tokens", headers=who)
    assert response.status == 200, response.body
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def assert_refused(response: RawResponse, status: int, *words: str) -> dict[str, Any]:
    """A JSON error naming its reason, never cached, and the connection closed."""
    assert response.status == status, response
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["connection"] == "close"
    error: dict[str, Any] = response.json()["error"]
    for word in words:
        assert word.lower() in error["message"].lower(), error
    return error


# -- bodies shorter than declared ----------------------------------------------------------------


def test_a_body_shorter_than_its_content_length_times_out_as_a_400_and_reaches_no_handler(server):
    """The bytes that did arrive are a complete, valid create (the rest would be spaces): the
    old server waited forever, then created a token whose secret nobody ever received."""
    who = identity()
    body = create_body()
    headers = {**who, "Content-Type": "application/json", "Content-Length": str(len(body) + 20)}
    answer = exchange(server, message("POST", "/tokens", headers, body))
    assert_refused(answer.only, 400, "incomplete", f"{len(body)} of the {len(body) + 20} bytes", "1 s")
    assert READ_TIMEOUT <= answer.seconds < READ_TIMEOUT + 10
    assert tokens_of(server, who) == []


def test_a_body_cut_off_by_the_client_closing_is_a_400_and_reaches_no_handler(server):
    who = identity()
    body = create_body()
    headers = {**who, "Content-Type": "application/json", "Content-Length": str(len(body) + 20)}
    answer = exchange(server, message("POST", "/tokens", headers, body), half_close=True)
    assert_refused(answer.only, 400, "connection closed after")
    assert tokens_of(server, who) == []


def test_headers_that_stop_arriving_close_the_connection_after_the_read_timeout(server):
    answer = exchange(server, b"POST /tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl")
    assert answer.responses == []
    assert READ_TIMEOUT <= answer.seconds < READ_TIMEOUT + 10


def test_a_chunked_body_that_stops_arriving_times_out_as_a_400_and_reaches_no_handler(server):
    who = identity()
    headers = {**who, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    no_last_chunk = chunked(create_body())[: -len(b"0\r\n\r\n")]
    answer = exchange(server, message("POST", "/tokens", headers, no_last_chunk))
    assert_refused(answer.only, 400, "incomplete")
    assert answer.seconds >= READ_TIMEOUT
    assert tokens_of(server, who) == []


# -- Content-Length --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "length",
    ["-1", "abc", "1e3", "0x2d", "+45", "45.0", "", "45, 45", "٤٥"],
    ids=["negative", "letters", "exponent", "hex", "plus", "decimal", "empty", "list", "arabic-digits"],
)
def test_a_content_length_that_is_not_digits_is_a_400_not_a_413(server, length: str) -> None:
    who = identity()
    body = create_body()
    data = message("POST", "/tokens", {**who, "Content-Type": "application/json"}, body)
    data = data.replace(b"\r\n\r\n", f"\r\nContent-Length: {length}\r\n\r\n".encode(), 1)
    error = assert_refused(exchange(server, data).only, 400, "Content-Length")
    assert error["code"] == "invalid_request"
    assert error["fields"] == [{"field": "Content-Length", "reason": "must be a non-negative integer"}]
    assert tokens_of(server, who) == []


def test_two_content_lengths_that_disagree_are_a_400(server):
    who = identity()
    body = create_body()
    headers = [*who.items(), ("Content-Length", str(len(body))), ("Content-Length", str(len(body) + 1))]
    assert_refused(exchange(server, message("POST", "/tokens", headers, body)).only, 400, "Content-Length")
    assert tokens_of(server, who) == []


def test_a_declared_length_over_10_mb_is_a_413_without_waiting_for_the_body(server):
    headers = {**identity(), "Content-Type": "application/json", "Content-Length": str(MAX_BODY + 1)}
    answer = exchange(server, message("POST", "/tokens", headers))  # no body sent, connection open
    error = assert_refused(answer.only, 413, "10 MB")  # had it waited for the body: a 400 after the timeout
    assert error["code"] == "payload_too_large"


def test_a_body_of_exactly_10_mb_passes_the_gateway_and_meets_the_handlers_own_limit(server):
    body = b'{"name": "' + b"x" * (MAX_BODY - 12) + b'"}'
    assert len(body) == MAX_BODY
    headers = {**identity(), "Content-Type": "application/json", "Content-Length": str(MAX_BODY)}
    response = exchange(server, message("POST", "/tokens", headers, body)).only
    assert response.status == 413
    reason = f"must be at most {MAX_BODY_CHARACTERS} characters"  # the handler's own limit
    assert response.json()["error"]["fields"] == [{"field": "body", "reason": reason}]


# -- Transfer-Encoding -------------------------------------------------------------------------------


def test_a_chunked_body_is_decoded_with_its_extensions_and_trailers(server):
    who = identity()
    body = create_body("chunked")
    headers = {**who, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    pieces = chunked(body[:7], body[7:20], body[20:], trailer=b"X-Checksum: 1\r\n")
    pieces = pieces.replace(b"\r\n", b";ext=value\r\n", 1)  # a chunk extension on the first size line
    response = exchange(server, message("POST", "/tokens", headers, pieces)).only
    assert response.status == 201, response.body
    assert response.json()["name"] == "chunked"
    assert [token["name"] for token in tokens_of(server, who)] == ["chunked"]


def test_the_bytes_of_a_chunked_body_are_never_read_as_a_request(server):
    """The chunk holds a whole second request: the old server ignored chunked framing and ran it."""
    who = identity()
    smuggled = message("POST", "/tokens", {**who, "Content-Length": str(len(create_body()))}, create_body())
    headers = {**who, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    response = exchange(server, message("POST", "/tokens", headers, chunked(smuggled))).only
    assert response.status == 400  # the handler's: the chunk's bytes are the body, and not JSON
    assert response.json()["error"]["fields"] == [{"field": "body", "reason": "is not valid JSON"}]
    assert tokens_of(server, who) == []


def test_a_chunked_body_over_10_mb_is_a_413(server):
    headers = {**identity(), "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    declared_too_big = exchange(server, message("POST", "/tokens", headers, b"a00001\r\n"))
    assert_refused(declared_too_big.only, 413, "10 MB")  # on the size line alone, the chunk never sent

    megabyte = b"%x\r\n%s\r\n" % (1024 * 1024, b" " * 1024 * 1024)
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(message("POST", "/tokens", headers))

        def send_eleven() -> None:
            try:
                for _ in range(11):
                    connection.sendall(megabyte)
            except OSError:
                pass  # the server answered and closed once the total passed 10 MB

        sender = threading.Thread(target=send_eleven)
        sender.start()
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
        sender.join(timeout=30)
    assert_refused(parse_responses(bytes(received))[0], 413, "10 MB")


@pytest.mark.parametrize(
    ("framing", "words"),
    [
        pytest.param(b"0x2d\r\n", ["chunk size"], id="hex-prefix"),
        pytest.param(b"2_d\r\n", ["chunk size"], id="underscore"),
        pytest.param(b"+2d\r\n", ["chunk size"], id="plus"),
        pytest.param(b"-1\r\n", ["chunk size"], id="negative"),
        pytest.param(b"zz\r\n", ["chunk size"], id="not-hex"),
        pytest.param(b"\r\n", ["chunk size"], id="empty"),
        pytest.param(b"2d\n", ["CRLF"], id="bare-lf"),
        pytest.param(b"2c\r\n", ["longer than its size"], id="chunk-longer-than-its-size"),
    ],
)
def test_malformed_chunked_framing_is_a_400(server, framing: bytes, words: list[str]) -> None:
    who = identity()
    body = create_body("chunk")
    assert len(body) == 0x2D
    headers = {**who, "Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    data = message("POST", "/tokens", headers, framing + body + b"\r\n0\r\n\r\n")
    assert_refused(exchange(server, data).only, 400, *words)
    assert tokens_of(server, who) == []


@pytest.mark.parametrize(
    ("headers", "version", "status", "words"),
    [
        pytest.param([("Transfer-Encoding", "chunked"), ("Content-Length", "45")], "HTTP/1.1", 400, ["both"], id="cl"),
        pytest.param([("Transfer-Encoding", "gzip, chunked")], "HTTP/1.1", 501, ["gzip"], id="gzip-chunked"),
        pytest.param([("Transfer-Encoding", "chunked, gzip")], "HTTP/1.1", 400, ["end with chunked"], id="not-last"),
        pytest.param([("Transfer-Encoding", "identity")], "HTTP/1.1", 400, ["end with chunked"], id="identity"),
        pytest.param([("Transfer-Encoding", "chunked, chunked")], "HTTP/1.1", 400, ["once"], id="twice"),
        pytest.param([("Transfer-Encoding", "chunked")], "HTTP/1.0", 400, ["HTTP/1.0"], id="http-1.0"),
    ],
)
def test_transfer_encodings_other_than_one_chunked_are_refused(
    server, headers: list[tuple[str, str]], version: str, status: int, words: list[str]
) -> None:
    who = identity()
    fields = [*who.items(), ("Content-Type", "application/json"), *headers]
    data = message("POST", "/tokens", fields, chunked(create_body()), version)
    assert_refused(exchange(server, data).only, status, "Transfer-Encoding", *words)
    assert tokens_of(server, who) == []


# -- charsets and UTF-8 ------------------------------------------------------------------------------


@pytest.mark.parametrize("charset", ["iso-8859-1", "latin1", "windows-1252", "utf-16", "us-ascii", "nonsense"])
def test_a_declared_charset_other_than_utf8_is_a_415_naming_it(server, charset: str) -> None:
    who = identity()
    body = create_body("caf\u00e9")
    encoded = body.decode().encode(charset) if charset not in ("us-ascii", "nonsense") else body
    headers = {**who, "Content-Type": f"application/json; charset={charset}", "Content-Length": str(len(encoded))}
    error = assert_refused(exchange(server, message("POST", "/tokens", headers, encoded)).only, 415, charset)
    assert error["code"] == "unsupported_media_type"
    assert error["fields"] == [{"field": "Content-Type", "reason": "charset must be utf-8"}]
    assert tokens_of(server, who) == []


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "utf8"])
def test_utf8_however_spelled_is_accepted(server, charset: str) -> None:
    who = identity()
    body = create_body("caf\u00e9 \u2713")
    headers = {**who, "Content-Type": f"application/json; charset={charset}", "Content-Length": str(len(body))}
    response = exchange(server, message("POST", "/tokens", headers, body)).only
    assert response.status == 201, response.body
    assert response.json()["name"] == "caf\u00e9 \u2713"


@pytest.mark.parametrize(
    "bad",
    [b"\xff", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe9t\xe9"],
    ids=["ff", "cut", "overlong", "surrogate", "l1"],
)
def test_a_body_that_is_not_utf8_is_a_400_not_replaced(server, bad: bytes) -> None:
    who = identity()
    body = create_body("placeholder").replace(b"placeholder", b"name " + bad)
    headers = {**who, "Content-Type": "application/json", "Content-Length": str(len(body))}
    error = assert_refused(exchange(server, message("POST", "/tokens", headers, body)).only, 400, "not valid UTF-8")
    assert error["fields"] == [{"field": "body", "reason": "must be valid UTF-8"}]
    assert tokens_of(server, who) == []


# -- methods -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/console/app.js", "/docs", "/openapi.json", "/_dev/health"])
def test_head_answers_as_get_without_a_body(server, path: str) -> None:
    get = exchange(server, message("GET", path)).only
    answer = exchange(server, message("HEAD", path), head=True)
    head = answer.only
    assert (head.status, head.body) == (get.status, b"")
    for name in ("content-type", "content-length", "cache-control"):
        assert head.headers.get(name) == get.headers.get(name), name


@pytest.mark.parametrize("path", ["/tokens", "/scopes", "/v1/token"])
def test_head_on_an_api_route_is_a_method_the_resource_does_not_have(server, self_token: str, path: str) -> None:
    """API Gateway REST APIs have no implicit HEAD: a resource answers only the methods it
    declares, and any other is a 403 MISSING_AUTHENTICATION_TOKEN (here without its body)."""
    head = exchange(server, message("HEAD", path, credentials(path, self_token)), head=True).only
    assert head.status == 403 and head.body == b""
    assert head.headers["content-type"] == "application/json"
    assert head.headers["content-length"] == str(len(json.dumps(MISSING_ROUTE)))


def console_api_methods() -> dict[str, str]:
    """Each console API resource's methods as SAM lists them for its OPTIONS method (Cors without
    AllowMethods): the resource's own, and OPTIONS, sorted."""
    methods: dict[str, set[str]] = {}
    for resource in load_template()["Resources"].values():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "Api" and event["Properties"].get("RestApiId") == {"Ref": "ConsoleApi"}:
                found = methods.setdefault(event["Properties"]["Path"], {"OPTIONS"})
                found.add(event["Properties"]["Method"].upper())
    return {path: ",".join(sorted(names)) for path, names in methods.items()}


def test_the_console_api_answers_preflights_as_api_gateway_does_for_its_cors(server, self_token: str) -> None:
    """template.yaml gives the console API Cors for the console's origin (its CloudFront domain;
    locally the dev server itself): SAM's OPTIONS method on every resource, a mock without the
    authorizer, answers with the configured origin and headers and the resource's methods."""
    cors = load_template()["Resources"]["ConsoleApi"]["Properties"]["Cors"]
    allowed_headers = cors["AllowHeaders"].strip("'")
    assert allowed_headers == "Authorization,Content-Type"
    resources = console_api_methods()
    assert resources["/tokens/{token_id}"] == "DELETE,GET,OPTIONS,PATCH"
    for resource, methods in resources.items():
        path = resource.replace("{token_id}", "abcdefghijklmnop").replace("{user_id}", "someone")
        preflight = {"Origin": server.url, "Access-Control-Request-Method": methods.split(",")[0]}
        response = exchange(server, message("OPTIONS", path, preflight)).only  # no credentials: none needed
        assert response.status == 200, path
        assert response.headers["access-control-allow-origin"] == server.url, path
        assert response.headers["access-control-allow-headers"] == allowed_headers, path
        assert response.headers["access-control-allow-methods"] == methods, path
        assert response.headers["access-control-max-age"] == cors["MaxAge"].strip("'"), path


def test_another_origin_is_never_allowed_and_the_token_api_has_no_cors(server, self_token: str) -> None:
    """API Gateway's mock answers every preflight alike, naming the one allowed origin: another
    origin never sees itself (nor `*`) in Access-Control-Allow-Origin, so its browser refuses.
    The token API configures no Cors: no OPTIONS method, the 403 of a method no resource has."""
    other = {"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"}
    for path in ("/tokens", "/tokens/abc", "/scopes"):
        response = exchange(server, message("OPTIONS", path, other)).only
        assert response.headers.get("access-control-allow-origin") == server.url, path
        assert "*" not in response.headers.get("access-control-allow-origin", ""), path
    for path in ("/v1/token", "/v1/token/rotate"):
        response = exchange(server, message("OPTIONS", path, {**other, **credentials(path, self_token)})).only
        assert (response.status, response.json()) == (403, MISSING_ROUTE), path
        assert not any(name.startswith("access-control-") for name in response.headers), path
    # The token API's own answers carry no CORS either.
    answer = exchange(server, message("GET", "/v1/token", {**other, **credentials("/v1/token", self_token)})).only
    assert answer.status == 200 and not any(name.startswith("access-control-") for name in answer.headers)


def test_the_console_api_s_own_errors_allow_the_console_s_origin(server) -> None:
    """DEFAULT_4XX and DEFAULT_5XX carry the console's origin, so the console's scripts can read
    API Gateway's own errors: here a path no resource has (403 MISSING_AUTHENTICATION_TOKEN)."""
    response = exchange(server, message("OPTIONS", "/", {"Origin": server.url})).only
    assert (response.status, response.json()) == (403, MISSING_ROUTE)
    assert response.headers["access-control-allow-origin"] == server.url
    assert response.headers["vary"] == "Origin"
    response = exchange(server, message("GET", "/tokens/a/b/c", {"Origin": server.url})).only
    assert (response.status, response.headers["access-control-allow-origin"]) == (403, server.url)


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "BREW", "get", "Post"])
@pytest.mark.parametrize("path", ["/tokens", "/v1/token", "/", "/_dev/health"])
def test_other_methods_get_the_answer_for_a_method_no_route_has(
    server, self_token: str, method: str, path: str
) -> None:
    """Never http.server's 501 HTML page: API Gateway's 403 for a method the resource lacks.
    Methods are case-sensitive (RFC 9110 9.1): `get` is not GET."""
    response = exchange(server, message(method, path, credentials(path, self_token))).only
    assert (response.status, response.json()) == (403, MISSING_ROUTE)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GARBAGE\r\n", 400, id="no-target"),
        pytest.param(b"GET / HTTP/2.0\r\n", 505, id="http-2.0-over-http1"),
        pytest.param(b"GET / HTTP/x.y\r\n", 400, id="bad-version"),
        pytest.param(b"GET / HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 101, 431, id="too-many-headers"),
        pytest.param(b"GET /" + b"a" * (65_537 - 5), 414, id="request-line-too-long"),
    ],
)
def test_requests_the_http_parser_refuses_get_json_too(server, data: bytes, status: int) -> None:
    """Each is refused on exactly the bytes sent (unread bytes would make the close a reset)."""
    response = exchange(server, data).only
    assert response.status == status
    assert isinstance(response.json()["error"]["message"], str)


# -- paths ---------------------------------------------------------------------------------------------


def test_the_event_has_the_path_as_sent_and_its_parameters_decoded_once(monkeypatch):
    """API Gateway's REST proxy event: `path` as the client sent it (percent-encoded), and
    `pathParameters` percent-decoded once: /tokens/tok%5Fabc is token_id tok_abc."""
    from devserver import gateway
    from devserver.server import console_identity

    events: list[dict[str, Any]] = []

    def invoke(route: Any, event: dict[str, Any]) -> gateway.HttpResponse:
        events.append(event)
        return gateway.HttpResponse(200, {}, "{}")

    monkeypatch.setattr(gateway, "invoke", invoke)
    local = gateway.LocalGateway(console_identity)
    for path, token_id in [
        ("/tokens/tok%5Fabc", "tok_abc"),
        ("/tokens/tok%255Fabc", "tok%5Fabc"),  # once: %25 is "%", and no more
        ("/tokens/a%2Fb", "a/b"),  # an encoded slash is part of the one segment
        ("/tokens/caf%C3%A9", "caf\u00e9"),
    ]:
        assert local.handle("GET", path, {}, {}, None).status == 200
        event = events.pop()
        assert (event["path"], event["pathParameters"]) == (path, {"token_id": token_id})
        assert event["resource"] == "/tokens/{token_id}"


def test_an_encoded_token_id_reaches_the_handler_decoded(server):
    who = identity()
    created = server.request("POST", "/tokens", json.loads(create_body()), who)
    assert created.status == 201, created.body
    token_id = created.json()["token_id"]
    first_encoded = f"%{ord(token_id[0]):02X}{token_id[1:]}"
    response = exchange(server, message("GET", f"/tokens/{first_encoded}", who)).only
    assert response.status == 200, response.body
    assert response.json()["token_id"] == token_id


def test_a_path_that_is_not_utf8_once_decoded_is_a_400(server):
    assert_refused(exchange(server, message("GET", "/tokens/%FF%FE", identity())).only, 400, "UTF-8")


def test_console_files_are_found_by_their_decoded_path_and_never_outside_the_console(server):
    assert exchange(server, message("GET", "/console/app%2Ejs")).only.status == 200
    for path in ("/console/..%2Fserver.py", "/console/%2E%2E/server.py", "/console/..%2F..%2Ftemplate.yaml"):
        assert exchange(server, message("GET", path)).only.status == 404, path
