"""`make dev`: the whole service on 127.0.0.1, with no AWS account and no Docker.

- API routes come from template.yaml and run the real handlers in functions/, as API
  Gateway proxy events; token-protected routes go through the real authorizer.
- DynamoDB (and EventBridge) are an embedded moto server unless --dynamodb-endpoint
  points elsewhere (DynamoDB Local, dynalite, a real table).
- The cleanup runs on its template schedule, and on demand: POST /_dev/cleanup.
- The console is at /, the OpenAPI document at /openapi.json, rendered at /docs.
- Sign-in: a local Cognito user pool on moto (devserver/cognito.py) with seeded users, and a
  stand-in for its managed login (devserver/managed_login.py); console requests need its ID
  token, checked as API Gateway's Cognito authorizer does. X-Dev-* identity headers only with
  --dev-identity-headers (tests). Cross-site writes are refused, and the server binds
  127.0.0.1 unless --host says otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import mimetypes
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer

from devserver.template import console_security_headers, function, parameter_default, table_definition, ttl_attribute
from devserver.wsgi import (
    API_METHODS,
    DEFAULT_READ_TIMEOUT_SECONDS,
    MAX_BODY_BYTES,
    HttpError,
    IncomingRequest,
    Response,
    bind,
    json_error,
    read_request,
)

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
# FlushStageAuthorizersCache (REST) and ResetAuthorizersCache (HTTP APIs), as botocore sends them.
_FLUSH_PATH = re.compile(r"(?:/v2)?/(?P<kind>restapis|apis)/(?P<api>[^/]+)/stages/(?P<stage>[^/]+)/cache/authorizers")
DEFAULT_IDENTITY = {"user_id": "alice", "org_id": "org-acme", "role": "admin"}
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (what --host may say, not what it binds)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def schedule_seconds(expression: str) -> float:
    """rate(1 hour) -> 3600; cron() expressions are run hourly locally."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return 3600.0
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)


class DevServer:
    def __init__(
        self,
        host: str,
        port: int,
        dynamodb_endpoint: str | None,
        cleanup_interval: float | None,
        read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS,
        dev_identity_headers: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        # X-Dev-User-Id/-Org-Id/-Role (and DEV_USER_ID/... when absent) stand for an ID token:
        # for tests only, never by default (anything on this machine could send them).
        self.dev_identity_headers = dev_identity_headers
        self.user_pool: Any = None
        self.managed_login: Any = None
        self.dynamodb_endpoint = dynamodb_endpoint
        self.cleanup_interval = cleanup_interval or schedule_seconds(parameter_default("CleanupSchedule"))
        self.read_timeout = read_timeout
        self._stop = threading.Event()
        self._moto: Any = None
        self.http: BaseWSGIServer | None = None

    # -- start-up ------------------------------------------------------------------------

    def bind(self) -> None:
        """Binds the port first, so a port in use fails fast with a clear message."""
        self.http = bind(self.host, self.port, self.app, self.read_timeout)
        self.port = self.http.server_address[1]

    def start_backends(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        moto_endpoint = "http://{}:{}".format(*self._moto.get_host_and_port())
        endpoint = self.dynamodb_endpoint or moto_endpoint
        self_endpoint = f"http://{self.host}:{self.port}"
        defaults = {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TABLE_NAME": "api-tokens-local",
            "EVENT_BUS_NAME": "api-tokens-local",
            "POWERTOOLS_SERVICE_NAME": "api-tokens",
            "POWERTOOLS_METRICS_NAMESPACE": "ApiTokens",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "TOKEN_PREFIX": parameter_default("TokenPrefix"),
            "RETENTION_DAYS": parameter_default("RetentionDays"),
            "NOTIFY_BEFORE_DAYS": parameter_default("NotifyBeforeDays"),
            "AUTHORIZER_CACHE_SECONDS": parameter_default("AuthorizerCacheSeconds"),
            "SECOND_FLUSH_DELAY_SECONDS": str(int(function("AuthorizerFunction").timeout)),
            # No signing keys locally (never GitHub's, over the internet): every leaked-token report
            # is a 401 unless this names a key list of your own (docs/secret-scanning.md).
            "SECRET_SCANNING_KEYS_URL": "http://127.0.0.1:9/no-secret-scanning-keys",
        }
        for key, value in defaults.items():
            os.environ.setdefault(key, value)
        os.environ.update(
            {
                "DYNAMODB_ENDPOINT_URL": endpoint,
                "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
                "AWS_ENDPOINT_URL_EVENTBRIDGE": moto_endpoint,
                # Revokes flush this server's authorizer caches, as they flush API Gateway's.
                "AWS_ENDPOINT_URL_API_GATEWAY": self_endpoint,
                "AWS_ENDPOINT_URL_APIGATEWAYV2": self_endpoint,
                # The console's origin (CORS): here the console is served by this server itself, where
                # template.yaml has its CloudFront distribution (devserver/gateway.py reads it too).
                "CONSOLE_ORIGIN": self_endpoint,
                "AWS_ENDPOINT_URL_SQS": moto_endpoint,
                "PROTECTED_APIS": ",".join(f"restapis/{api}/stages/local" for api in ("tokenapi", "exampleapi")),
            }
        )
        self._ensure_table(endpoint)
        self._ensure_event_bus(moto_endpoint)
        self._ensure_flush_queue(moto_endpoint)
        self._start_user_pool(moto_endpoint)

    def _start_user_pool(self, moto_endpoint: str) -> None:
        """The local user pool and its managed login; the console functions accept its client's tokens."""
        from devserver.cognito import LocalUserPool
        from devserver.managed_login import ManagedLogin

        redirect_uris = [f"{origin}/" for origin in self.origins()]
        self.user_pool = LocalUserPool(moto_endpoint, redirect_uris, os.environ.get("DEV_USER_PASSWORD") or None)
        self.managed_login = ManagedLogin(self.user_pool)
        os.environ["CONSOLE_CLIENT_IDS"] = self.user_pool.client_id

    # -- origins -------------------------------------------------------------------------------

    def origins(self) -> list[str]:
        """This server's own origins: the loopback names, and the --host it was given."""
        names = ["127.0.0.1", "localhost"]
        if self.host not in {*names, *WILDCARD_HOSTS}:
            names.append(self.host)
        return [f"http://{f'[{name}]' if ':' in name else name}:{self.port}" for name in names]

    def origin_of(self, request: IncomingRequest) -> str:
        """The origin the request was sent to, when it is one of this server's; else the first."""
        host = _header(request.headers, "Host")
        candidate = f"http://{host}" if host else None
        origins = self.origins()
        return candidate if candidate in origins else origins[0]

    def front_door(self, request: IncomingRequest) -> Response | None:
        """Refuses what a page of another site could make a browser send here: a request for
        another host name (DNS rebinding) when bound to loopback, an unsafe method from another
        origin, a body that is not JSON (an HTML form or a no-preflight fetch cannot send JSON)."""
        from devserver.managed_login import PATHS as SIGN_IN_PATHS

        host = _header(request.headers, "Host")
        if host is not None and self.host in LOOPBACK_HOSTS and _hostname(host) not in LOOPBACK_HOSTS:
            return json_error(
                421,
                "misdirected_request",
                "This server answers for 127.0.0.1 and localhost only.",
                "Host",
                "must be a loopback name",
            )
        origin = _header(request.headers, "Origin")
        if request.method in UNSAFE_METHODS and origin is not None:
            own = set(self.origins())
            if self.host in WILDCARD_HOSTS and host:
                own.add(f"http://{host}")
            if origin not in own:
                return json_error(
                    403,
                    "forbidden",
                    "Cross-site request refused: the Origin is not this server's.",
                    "Origin",
                    "must be this server's own origin",
                )
        media_type = (request.content_type or "").split(";")[0].strip().lower()
        if request.body and request.path not in SIGN_IN_PATHS and media_type != "application/json":
            return json_error(
                415,
                "unsupported_media_type",
                "A request body must be JSON, with Content-Type: application/json.",
                "Content-Type",
                "must be application/json",
            )
        return None

    def console_config(self, request: IncomingRequest) -> dict[str, Any]:
        """/config.json: what the console needs to sign in and call the API (the deployed console's
        is written by the deploy)."""
        origin = self.origin_of(request)
        config: dict[str, Any] = {
            "apiUrl": origin,
            "userPoolId": self.user_pool.pool_id,
            "clientId": self.user_pool.client_id,
            "authDomain": origin,  # the managed login stand-in is on this server
            "redirectUri": f"{origin}/",
            "region": "us-east-1",
        }
        if self.dev_identity_headers:
            config["devIdentityHeaders"] = True
        return config

    @staticmethod
    def _ensure_table(endpoint: str) -> None:
        import boto3

        client = boto3.client("dynamodb", endpoint_url=endpoint)
        table = os.environ["TABLE_NAME"]
        if table in client.list_tables().get("TableNames", []):
            return
        client.create_table(TableName=table, **table_definition())
        client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        # Some local implementations have no TTL; expiry never depends on it anyway.
        with contextlib.suppress(client.exceptions.ClientError):
            client.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute()}
            )

    @staticmethod
    def _ensure_flush_queue(endpoint: str) -> None:
        import boto3

        client = boto3.client("sqs", endpoint_url=endpoint)
        os.environ["FLUSH_QUEUE_URL"] = client.create_queue(QueueName="api-tokens-flush")["QueueUrl"]

    @staticmethod
    def _ensure_event_bus(endpoint: str) -> None:
        import boto3

        client = boto3.client("events", endpoint_url=endpoint)
        name = os.environ["EVENT_BUS_NAME"]
        if name not in [bus["Name"] for bus in client.list_event_buses().get("EventBuses", [])]:
            client.create_event_bus(Name=name)

    # -- serving -------------------------------------------------------------------------

    def serve(self) -> None:
        from devserver.cognito import IdTokenVerifier
        from devserver.gateway import LocalGateway, example_routes

        assert self.http is not None
        verifier = IdTokenVerifier(self.user_pool.issuer, self.user_pool.jwks_url)
        client_id = self.user_pool.client_id
        dev_headers = self.dev_identity_headers

        def console_caller(headers: Mapping[str, str]) -> Any:
            """The Cognito authorizer: an ID token in Authorization, else (tests only) X-Dev-* headers."""
            authorization = _header(headers, "Authorization")
            if authorization or not dev_headers:
                return verifier.claims(authorization)
            return console_identity(headers, client_id)

        self.gateway = LocalGateway(
            console_caller,
            extra_routes=example_routes(os.environ.get("ROUTE_SCOPES_PATH")),
            # As a deployment's AuthorizerCacheSeconds: the gateway's cache time, and the authorizer's.
            cache_seconds=int(os.environ["AUTHORIZER_CACHE_SECONDS"]),
            authorizer_latency=float(os.environ.get("DEV_AUTHORIZER_LATENCY_SECONDS") or 0),
        )
        threading.Thread(target=self._cleanup_loop, name="cleanup", daemon=True).start()
        threading.Thread(target=self._flush_queue_loop, name="flush-queue", daemon=True).start()
        print(f"API token service running at http://{self.host}:{self.port}/  (Ctrl-C to stop)", flush=True)
        print(f"  console: http://{self.host}:{self.port}/   OpenAPI: /openapi.json, /docs", flush=True)
        print(
            f"  DynamoDB: {os.environ['DYNAMODB_ENDPOINT_URL']}  cleanup every {self.cleanup_interval:g}s", flush=True
        )
        self._print_users()
        self.http.serve_forever(poll_interval=0.2)  # werkzeug's: returns on Ctrl-C

    def _print_users(self) -> None:
        from devserver.cognito import SEED_USERS

        pool = self.user_pool
        print(f"  sign in at {self.origins()[0]}/ (local user pool {pool.pool_id}):", flush=True)
        for user in SEED_USERS:
            where = f"{user.org_id} {user.role}" if user.org_id else "no organisation, no role"
            print(f"    {user.email:<24} {pool.passwords[user.email]}  {where}", flush=True)
        if self.dev_identity_headers:
            print(
                "  --dev-identity-headers: X-Dev-User-Id/-Org-Id/-Role headers (or DEV_USER_ID/... when absent) "
                "act as a signed-in user. For tests only.",
                flush=True,
            )

    def run_cleanup(self) -> dict[str, Any]:
        from devserver.gateway import LambdaContext, load_handler_module
        from devserver.template import function

        cleanup = function("CleanupFunction")
        module = load_handler_module(cleanup.code_dir, cleanup.handler)
        context = LambdaContext("CleanupFunction", cleanup.timeout)
        result: dict[str, Any] = module.lambda_handler({"source": "devserver"}, context)
        return result

    def _cleanup_loop(self) -> None:
        while not self._stop.wait(self.cleanup_interval):
            try:
                self.run_cleanup()
            except Exception as error:  # the loop must survive a failed run, as the schedule does
                print(f"cleanup run failed: {error!r}", file=sys.stderr, flush=True)

    def _flush_queue_loop(self) -> None:
        """The cache-flush function's SQS event source: delivers due messages in batches, deletes
        those the function handled, and leaves failures to come back after their visibility timeout."""
        import boto3

        from devserver.gateway import LambdaContext, load_handler_module

        flusher = function("CacheFlushFunction")
        module = load_handler_module(flusher.code_dir, flusher.handler)
        sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"])
        queue = os.environ["FLUSH_QUEUE_URL"]
        while not self._stop.wait(0.2):
            try:
                messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=5)
                records = [
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                    }
                    for message in messages.get("Messages", [])
                ]
                if not records:
                    continue
                result = module.lambda_handler(
                    {"Records": records}, LambdaContext("CacheFlushFunction", flusher.timeout)
                )
                failed = {failure["itemIdentifier"] for failure in result.get("batchItemFailures", [])}
                for record in records:
                    if record["messageId"] not in failed:
                        sqs.delete_message(QueueUrl=queue, ReceiptHandle=record["receiptHandle"])
            except Exception as error:  # the loop must survive, as the event source mapping does
                print(f"flush queue delivery failed: {error!r}", file=sys.stderr, flush=True)

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        """The WSGI application werkzeug's server runs for every request."""
        return _app(self, environ, start_response)

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.server_close()
        if self._moto is not None:
            self._moto.stop()


def console_identity(headers: Mapping[str, str], client_id: str | None = None) -> Any:
    """With --dev-identity-headers only (tests): X-Dev-* headers, else DEV_USER_ID/DEV_ORG_ID/
    DEV_ROLE, else alice, an admin of org-acme, stand for an ID token of `client_id`."""
    from devserver.gateway import SAMPLE_CLIENT_ID, Identity

    lowered = {key.lower(): value for key, value in headers.items()}
    return Identity(
        user_id=lowered.get("x-dev-user-id") or os.environ.get("DEV_USER_ID", DEFAULT_IDENTITY["user_id"]),
        org_id=lowered.get("x-dev-org-id") or os.environ.get("DEV_ORG_ID", DEFAULT_IDENTITY["org_id"]),
        role=lowered.get("x-dev-role") or os.environ.get("DEV_ROLE", DEFAULT_IDENTITY["role"]),
        client_id=client_id or SAMPLE_CLIENT_ID,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name.lower()), None)


def _hostname(host: str) -> str:
    """The name of a Host header's value, without its port ("[::1]:3000" -> "::1")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


# -- the WSGI application -------------------------------------------------------------------

_FORWARDED_HEADERS_EXCLUDED = {"content-length", "connection", "transfer-encoding", "keep-alive"}


def _app(server: DevServer, environ: dict[str, Any], start_response: Any) -> Any:
    try:
        response = _respond(server, read_request(environ, MAX_BODY_BYTES))
    except HttpError as error:
        response = error.response()
    except Exception:  # a bug of the dev server's own: the traceback, and a JSON 500
        traceback.print_exc()
        response = json_error(500, "internal_error", "The dev server failed on this request; see its output.")
    return response(environ, start_response)


def _respond(server: DevServer, request: IncomingRequest) -> Response:
    """The dev server's own resources (GET, and HEAD as GET without the body), the cache flushes
    revokes send to API Gateway, then the APIs as API Gateway answers them."""
    method, path = request.method, request.path
    refused = server.front_door(request)
    if refused is not None:
        return refused
    signing_in = server.managed_login.handle(request) if server.managed_login is not None else None
    if signing_in is not None:
        return signing_in
    if method in ("GET", "HEAD"):
        if path == "/config.json":  # the console's configuration (the deploy writes the deployed one)
            config = _json(200, server.console_config(request))
            config.headers["Cache-Control"] = "no-store"
            return config
        if path == "/" or path.startswith("/console/"):
            return _static(path)
        if path == "/openapi.json":
            from devserver.openapi import openapi_document

            return _json(200, openapi_document(f"http://{server.host}:{server.port}"))
        if path == "/docs":
            return _static("/console/docs.html")
        if path == "/_dev/health":
            return _json(200, {"status": "ok"})
        if path == "/_dev/flushes":  # which caches revokes flushed
            return _json(200, {"flushes": server.gateway.flushes})
    if method == "POST" and path == "/_dev/cleanup":
        return _json(200, server.run_cleanup())
    flush = _FLUSH_PATH.fullmatch(path)
    if method == "DELETE" and flush:
        server.gateway.flush_authorizer_cache(flush.group("kind"), flush.group("api"), flush.group("stage"))
        return Response(b"", status=202 if flush.group("kind") == "restapis" else 204)
    from devserver.gateway import unknown_route

    if method not in API_METHODS and method.upper() in API_METHODS:
        # Methods are case-sensitive (RFC 9110 9.1): `get` is no method a resource has, though
        # the route table matches methods in any case.
        answer = unknown_route(request.raw_path)
    else:  # TRACE, CONNECT, PROPFIND, ... match no route either: the gateway answers as for one
        # The event's path as sent (percent-encoded, as API Gateway's REST proxy passes it); the
        # gateway decodes path parameters.
        answer = server.gateway.handle(
            method, request.raw_path, request.headers, request.query, request.text(), request.source_ip
        )
    headers = {key: value for key, value in answer.headers.items() if key.lower() not in _FORWARDED_HEADERS_EXCLUDED}
    return Response(answer.body.encode(), status=answer.status, headers=headers)


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, headers={"Content-Type": "application/json"})


def _static(path: str) -> Response:
    relative = "index.html" if path == "/" else path.removeprefix("/console/")
    file = (CONSOLE_DIR / relative).resolve()
    if not file.is_relative_to(CONSOLE_DIR) or not file.is_file():
        return json_error(404, "not_found", "No such file.")
    content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    # The headers CloudFront adds in a deployment (template.yaml), so the browser tests run
    # under the same Content-Security-Policy: no inline script or style.
    headers = {"Content-Type": content_type, "Cache-Control": "no-store", **console_security_headers()}
    return Response(file.read_bytes(), status=200, headers=headers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes the service to the network)",
    )
    parser.add_argument(
        "--dev-identity-headers",
        action="store_true",
        default=os.environ.get("DEV_IDENTITY_HEADERS", "").lower() in {"1", "true"},
        help="For tests only: X-Dev-User-Id/-Org-Id/-Role headers (or DEV_USER_ID/... when absent) act as a "
        "signed-in user when a request has no Authorization header (or DEV_IDENTITY_HEADERS=1)",
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--dynamodb-endpoint",
        default=os.environ.get("DYNAMODB_ENDPOINT_URL"),
        help="Any DynamoDB-compatible endpoint (default: an embedded moto server)",
    )
    parser.add_argument("--cleanup-interval", type=float, help="Seconds between cleanup runs (default: template)")
    parser.add_argument(
        "--read-timeout",
        type=float,
        default=float(os.environ.get("DEV_READ_TIMEOUT_SECONDS") or DEFAULT_READ_TIMEOUT_SECONDS),
        help="Seconds a connection may wait for the next bytes of a request before it is answered 400 and "
        f"closed (default {DEFAULT_READ_TIMEOUT_SECONDS:g}, or DEV_READ_TIMEOUT_SECONDS)",
    )
    args = parser.parse_args(argv)
    server = DevServer(
        args.host,
        args.port,
        args.dynamodb_endpoint,
        args.cleanup_interval,
        args.read_timeout,
        dev_identity_headers=args.dev_identity_headers,
    )
    try:
        server.bind()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(
                f"Port {args.port} on {args.host} is already in use. Stop the other process or pick another "
                f"port: make dev PORT=3001 (or python -m devserver --port 3001).",
                file=sys.stderr,
            )
            return 2
        raise
    try:
        server.start_backends()
        server.serve()  # until Ctrl-C
        print("\nStopping...", flush=True)
    except KeyboardInterrupt:  # Ctrl-C while starting
        print("\nStopping...", flush=True)
    finally:
        server.stop()
    print("Stopped.", flush=True)
    return 0
