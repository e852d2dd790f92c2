"""The dev server's HTTP layer: werkzeug's threaded WSGI server, and the checks API Gateway's
front door and RFC 9110/9112 make before a request reaches an API.

werkzeug parses request lines and headers, runs each connection in a thread and writes the
responses (closing the connection after each one). This module adds what a WSGI server
leaves to the application, strictly: a read timeout on every connection, the body framed by
exactly one of Content-Length (digits only) or Transfer-Encoding: chunked, at most 10 MB (API
Gateway's payload limit), read in full before anything acts on it, and passed on only as
UTF-8 text. Every refusal is a JSON error naming its reason, as the APIs' own errors are.
"""

from __future__ import annotations

import codecs
import json
import re
import socket
import sys
from dataclasses import dataclass
from email.message import Message
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from werkzeug.http import parse_options_header
from werkzeug.serving import (
    BaseWSGIServer,
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)
from werkzeug.wrappers import Response as _Response

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
DEFAULT_READ_TIMEOUT_SECONDS = 5.0  # the longest wait for the next bytes of a request
MAX_CHUNK_LINE_BYTES = 4096  # a chunk-size line with its extensions, or one trailer field
MAX_TRAILER_FIELDS = 100
# The methods a REST API resource can have (ANY stands for these); any other is a method no route has.
API_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_TARGET = "devserver.request_target"  # the request-target exactly as sent (latin-1 decoded)
_HEADERS = "devserver.headers"  # the request's header fields, in order, duplicates kept
_READ_TIMEOUT = "devserver.read_timeout"
_QUERY = re.compile(r"\?[^\s\"']*")
_CHUNK_SIZE_LINE = re.compile(rb"(?P<size>[0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r\n")


class Response(_Response):
    """A werkzeug Response that adds no Content-Type of its own (an empty 202 stays untyped)."""

    default_mimetype = None


def json_error(status: int, code: str, message: str, field: str | None = None, reason: str | None = None) -> Response:
    """The APIs' error body: {"error": {"code", "message", "fields"?}}, never cached."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["fields"] = [{"field": field, "reason": reason or message}]
    return Response(
        json.dumps({"error": error}),
        status=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


class HttpError(Exception):
    """A request refused by the HTTP layer, before any route or handler sees it."""

    def __init__(self, status: int, code: str, message: str, field: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.reason = status, code, message, field, reason

    def response(self) -> Response:
        return json_error(self.status, self.code, self.message, self.field, self.reason)


def _bad(message: str, field: str, reason: str) -> HttpError:
    return HttpError(400, "invalid_request", message, field, reason)


def _too_large(limit: int) -> HttpError:
    return HttpError(
        413,
        "payload_too_large",
        f"The request body is over API Gateway's payload limit of {limit // (1024 * 1024)} MB ({limit} bytes).",
        "body",
        f"must be at most {limit} bytes",
    )


# -- the request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingRequest:
    """A request as the HTTP layer passes it on: framing checked, body read in full."""

    method: str
    raw_path: str  # percent-encoded, as sent: what API Gateway puts in the event's `path`
    path: str  # percent-decoded once, as UTF-8
    query: dict[str, list[str]]
    headers: dict[str, str]  # the last value of a repeated field, as API Gateway's `headers`
    body: bytes
    content_type: str | None
    source_ip: str

    def text(self) -> str | None:
        """The body as the text a Lambda proxy event carries: None without one, else UTF-8 only.
        A declared charset other than UTF-8 is a 415 and bytes that are not UTF-8 are a 400,
        never silently replaced."""
        if not self.body:
            return None
        charset = parse_options_header(self.content_type or "")[1].get("charset")
        if charset is not None and not _is_utf8(charset):
            raise HttpError(
                415,
                "unsupported_media_type",
                f"Request bodies must be UTF-8 (JSON is UTF-8, RFC 8259); the Content-Type declares "
                f"charset={charset[:40]}.",
                "Content-Type",
                "charset must be utf-8",
            )
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _bad(
                f"The request body is not valid UTF-8: byte 0x{self.body[error.start]:02x} at offset {error.start}.",
                "body",
                "must be valid UTF-8",
            ) from None


def _is_utf8(charset: str) -> bool:
    try:
        return codecs.lookup(charset.strip().strip('"')).name == "utf-8"
    except LookupError:
        return False


def read_request(environ: dict[str, Any], max_body_bytes: int = MAX_BODY_BYTES) -> IncomingRequest:
    """Checks the request-target and the body's framing, then reads the whole body (a request is
    never acted on before all of it has arrived). Raises HttpError for anything malformed."""
    target: str = environ[_TARGET]
    headers: Message = environ[_HEADERS]
    raw_path, query = _split_target(target)
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(
            "The request path is not valid UTF-8 once percent-decoded.", "path", "must be UTF-8 when decoded"
        ) from None
    body = read_body(
        environ["wsgi.input"],
        headers,
        max_body_bytes,
        environ[_READ_TIMEOUT],
        http_10=environ.get("SERVER_PROTOCOL") == "HTTP/1.0",
    )
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(name, []).append(value)
    return IncomingRequest(
        method=environ["REQUEST_METHOD"],
        raw_path=raw_path,
        path=path,
        query=values,
        headers=dict(headers.items()),
        body=body,
        content_type=headers.get("Content-Type"),
        source_ip=environ.get("REMOTE_ADDR", ""),
    )


def _split_target(target: str) -> tuple[str, str]:
    """origin-form (/path?query), absolute-form (http://host/path?query) or asterisk-form (*)."""
    if any(not 0x21 <= ord(char) <= 0x7E for char in target):
        raise _bad(
            "The request target must be ASCII without spaces or controls; percent-encode other characters.",
            "path",
            "must be ASCII, percent-encoded",
        )
    if target.startswith("/") or target == "*":
        path, _, query = target.partition("?")
        return path, query.partition("#")[0]
    parts = urlsplit(target)
    if not parts.scheme or not parts.netloc:
        raise _bad("The request target is not a path nor an absolute URL.", "path", "must start with /")
    return parts.path or "/", parts.query


# -- the body ------------------------------------------------------------------------------------


def read_body(stream: Any, headers: Message, max_bytes: int, timeout: float, *, http_10: bool = False) -> bytes:
    """The whole body, framed by Content-Length or chunked transfer coding (RFC 9112 section 6)."""
    lengths = [value.strip() for value in headers.get_all("Content-Length") or []]
    encodings = headers.get_all("Transfer-Encoding") or []
    if encodings:
        if lengths:  # a request smuggling classic: the two framings may disagree
            raise _bad(
                "The request has both Content-Length and Transfer-Encoding; a body is framed one way only "
                "(RFC 9112 section 6.3).",
                "Transfer-Encoding",
                "must not be combined with Content-Length",
            )
        if http_10:
            raise _bad(
                "HTTP/1.0 has no Transfer-Encoding (RFC 9112 section 6.1); send Content-Length.",
                "Transfer-Encoding",
                "not in HTTP/1.0",
            )
        codings = [coding.strip().lower() for value in encodings for coding in value.split(",") if coding.strip()]
        if not codings or codings[-1] != "chunked" or codings.count("chunked") > 1:
            raise _bad(
                f"Transfer-Encoding must end with chunked, once (RFC 9112 section 6.3): got {', '.join(codings)[:80]}.",
                "Transfer-Encoding",
                "must end with chunked",
            )
        if len(codings) > 1:
            raise HttpError(
                501,
                "not_implemented",
                f"Transfer-Encoding {', '.join(codings[:-1])[:80]} is not supported; only chunked is.",
                "Transfer-Encoding",
                "only chunked is supported",
            )
        return _read_chunked(stream, max_bytes, timeout)
    if not lengths:
        return b""
    if len(set(lengths)) > 1:
        raise _bad(
            "The request has several Content-Length values that disagree.", "Content-Length", "must be given once"
        )
    if not re.fullmatch(r"[0-9]+", lengths[0]):
        raise _bad(
            f"Content-Length must be a number of bytes, digits only: {lengths[0][:40]!r} is not.",
            "Content-Length",
            "must be a non-negative integer",
        )
    length = int(lengths[0])
    if length > max_bytes:
        raise _too_large(max_bytes)  # answered without reading the body
    return _read_exactly(stream, length, timeout, f"of the {length} bytes its Content-Length declares")


def _read_exactly(stream: Any, length: int, timeout: float, declared: str) -> bytes:
    read = getattr(stream, "read1", stream.read)  # read1: one recv at a time, each under the timeout
    parts: list[bytes] = []
    received = 0
    while received < length:
        try:
            part = read(min(length - received, 65536))
        except TimeoutError:
            raise _bad(
                f"The request body is incomplete: {received} {declared} arrived, then nothing for {timeout:g} s.",
                "body",
                "is shorter than declared",
            ) from None
        if not part:
            raise _bad(
                f"The request body is incomplete: the connection closed after {received} {declared}.",
                "body",
                "is shorter than declared",
            )
        parts.append(part)
        received += len(part)
    return b"".join(parts)


def _read_line(stream: Any, timeout: float, what: str) -> bytes:
    try:
        line: bytes = stream.readline(MAX_CHUNK_LINE_BYTES + 1)
    except TimeoutError:
        raise _bad(
            f"The chunked request body is incomplete: no {what} for {timeout:g} s.", "body", "is incomplete"
        ) from None
    if not line:
        raise _bad(
            f"The chunked request body is incomplete: the connection closed before its {what}.",
            "body",
            "is incomplete",
        )
    if len(line) > MAX_CHUNK_LINE_BYTES:
        raise _bad(f"The chunked request body has a {what} over {MAX_CHUNK_LINE_BYTES} bytes.", "body", "is malformed")
    if not line.endswith(b"\r\n"):
        raise _bad(f"The chunked request body's {what} does not end with CRLF.", "body", "is malformed")
    return line


def _read_chunked(stream: Any, max_bytes: int, timeout: float) -> bytes:
    """chunked-body = *chunk last-chunk trailer-section CRLF (RFC 9112 section 7.1); extensions
    and trailer fields are read and ignored."""
    body = bytearray()
    while True:
        line = _read_line(stream, timeout, "chunk size line")
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            raise _bad(
                f"The chunked request body has an invalid chunk size line: {line[:40]!r}.",
                "body",
                "has an invalid chunk size",
            )
        size = int(match.group("size"), 16)
        if size == 0:
            break
        if len(body) + size > max_bytes:
            raise _too_large(max_bytes)
        body += _read_exactly(stream, size, timeout, f"of a {size}-byte chunk's bytes")
        if _read_exactly(stream, 2, timeout, "bytes of a chunk's closing CRLF") != b"\r\n":
            raise _bad(
                "The chunked request body has a chunk longer than its size line says.",
                "body",
                "has a chunk that does not match its size",
            )
    for _ in range(MAX_TRAILER_FIELDS + 1):
        line = _read_line(stream, timeout, "trailer section")
        if line == b"\r\n":
            return bytes(body)
        if b":" not in line:
            raise _bad("The chunked request body has a malformed trailer field.", "body", "is malformed")
    raise _bad(f"The chunked request body has over {MAX_TRAILER_FIELDS} trailer fields.", "body", "is malformed")


# -- the server ----------------------------------------------------------------------------------


class RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with a read timeout (StreamRequestHandler.timeout: every recv of the
    connection, from the request line to the body's last byte), the raw request passed to the
    application, JSON instead of HTML for the errors it answers itself, and plain access logs."""

    protocol_version = "HTTP/1.1"
    server_version = "api-tokens-devserver"  # werkzeug's is a property
    timeout = DEFAULT_READ_TIMEOUT_SECONDS

    def make_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().make_environ()
        # The application frames the body itself (read_body), from the raw stream: werkzeug's
        # chunked decoder is lenient (0x1a, 1_a) and refuses chunk extensions and trailers.
        environ["wsgi.input"] = self.rfile
        environ.pop("wsgi.input_terminated", None)
        environ[_TARGET] = self.path
        environ[_HEADERS] = self.headers
        environ[_READ_TIMEOUT] = self.timeout
        return environ

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code)  # the standard reason phrase (werkzeug's are upper case)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, headers too long, HTTP/2.0):
        JSON, and the connection closed."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":  # refused before its version was read: answer in HTTP/1.1
            self.request_version = self.protocol_version
        error_code = "invalid_request" if code == 400 else re.sub(r"\W+", "_", phrase.lower())
        body = json.dumps({"error": {"code": error_code, "message": message or phrase}}).encode()
        self.send_response(code, phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        line = getattr(self, "requestline", "")
        printable = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in line)
        self.log("info", '"%s" %s %s', printable, code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        """One line on stderr, without query strings: like API Gateway's access log (which names the
        resource path), it never shows a token or anything else sent in a URL's query."""
        line = _QUERY.sub("", message % args)
        sys.stderr.write(f"{self.client_address[0] if self.client_address else '-'} {line}\n")


def bind(host: str, port: int, app: Any, read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS) -> BaseWSGIServer:
    """A threaded werkzeug server on host:port. The socket is bound here so that a port in use
    raises OSError (EADDRINUSE) to the caller; werkzeug's own bind exits the process instead."""
    family = select_address_family(host, port)
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(get_sockaddr(host, port, family))
        listener.listen(128)
        handler = type("RequestHandler", (RequestHandler,), {"timeout": read_timeout})
        return make_server(host, port, app, threaded=True, request_handler=handler, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the socket
