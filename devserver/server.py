"""`make dev`: the whole service on 127.0.0.1, with no AWS account and no Docker.

- API routes come from template.yaml and run the real handlers in functions/, as API
  Gateway proxy events; token-protected routes go through the real authorizer.
- DynamoDB (and EventBridge) are an embedded moto server unless --dynamodb-endpoint
  points elsewhere (DynamoDB Local, dynalite, a real table).
- The cleanup runs on its template schedule, and on demand: POST /_dev/cleanup.
- The console is at /, the OpenAPI document at /openapi.json, rendered at /docs.
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
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devserver.template import function, parameter_default, table_definition, ttl_attribute

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# FlushStageAuthorizersCache (REST) and ResetAuthorizersCache (HTTP APIs), as botocore sends them.
_FLUSH_PATH = re.compile(r"(?:/v2)?/(?P<kind>restapis|apis)/(?P<api>[^/]+)/stages/(?P<stage>[^/]+)/cache/authorizers")
DEFAULT_IDENTITY = {"user_id": "alice", "org_id": "org-acme", "role": "admin"}


def schedule_seconds(expression: str) -> float:
    """rate(1 hour) -> 3600; cron() expressions are run hourly locally."""
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        return 3600.0
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)


class DevServer:
    def __init__(self, host: str, port: int, dynamodb_endpoint: str | None, cleanup_interval: float | None) -> None:
        self.host = host
        self.port = port
        self.dynamodb_endpoint = dynamodb_endpoint
        self.cleanup_interval = cleanup_interval or schedule_seconds(parameter_default("CleanupSchedule"))
        self._stop = threading.Event()
        self._moto: Any = None
        self.http: ThreadingHTTPServer | None = None

    # -- start-up ------------------------------------------------------------------------

    def bind(self) -> None:
        """Binds the port first, so a port in use fails fast with a clear message."""
        self.http = ThreadingHTTPServer((self.host, self.port), _handler_class(self))
        self.http.daemon_threads = True
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
                "AWS_ENDPOINT_URL_SQS": moto_endpoint,
                "PROTECTED_APIS": ",".join(f"restapis/{api}/stages/local" for api in ("tokenapi", "exampleapi")),
            }
        )
        self._ensure_table(endpoint)
        self._ensure_event_bus(moto_endpoint)
        self._ensure_flush_queue(moto_endpoint)

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
        from devserver.gateway import LocalGateway, example_routes

        assert self.http is not None
        self.gateway = LocalGateway(
            console_identity,
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
        self.http.serve_forever(poll_interval=0.2)

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

    def stop(self) -> None:
        self._stop.set()
        if self.http is not None:
            self.http.server_close()
        if self._moto is not None:
            self._moto.stop()


def console_identity(headers: Mapping[str, str]) -> Any:
    """Stands in for the Cognito login: the console's identity switcher sends X-Dev-* headers."""
    from devserver.gateway import Identity

    lowered = {key.lower(): value for key, value in headers.items()}
    return Identity(
        user_id=lowered.get("x-dev-user-id") or os.environ.get("DEV_USER_ID", DEFAULT_IDENTITY["user_id"]),
        org_id=lowered.get("x-dev-org-id") or os.environ.get("DEV_ORG_ID", DEFAULT_IDENTITY["org_id"]),
        role=lowered.get("x-dev-role") or os.environ.get("DEV_ROLE", DEFAULT_IDENTITY["role"]),
    )


def _handler_class(server: DevServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "api-tokens-devserver"

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

        def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        def _body(self) -> str | None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise ValueError("payload too large")
            return self.rfile.read(length).decode("utf-8", errors="replace") if length else None

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            path = url.path
            try:
                body = self._body()
            except ValueError:
                self._json(413, {"error": {"code": "payload_too_large", "message": "Request body over 10 MB."}})
                self.close_connection = True
                return None
            if self.command == "GET" and (path == "/" or path.startswith("/console/")):
                return self._static(path)
            if self.command == "GET" and path == "/openapi.json":
                from devserver.openapi import openapi_document

                return self._json(200, openapi_document(f"http://{server.host}:{server.port}"))
            if self.command == "GET" and path == "/docs":
                return self._static("/console/docs.html")
            if self.command == "GET" and path == "/_dev/health":
                return self._json(200, {"status": "ok"})
            if self.command == "GET" and path == "/_dev/flushes":  # which caches revokes flushed
                return self._json(200, {"flushes": server.gateway.flushes})
            if self.command == "POST" and path == "/_dev/cleanup":
                return self._json(200, server.run_cleanup())
            flush = _FLUSH_PATH.fullmatch(path)
            if self.command == "DELETE" and flush:
                server.gateway.flush_authorizer_cache(flush.group("kind"), flush.group("api"), flush.group("stage"))
                return self._send(202 if flush.group("kind") == "restapis" else 204, b"", {})
            headers = dict(self.headers.items())
            query: dict[str, list[str]] = {}
            for name, value in parse_qsl(url.query, keep_blank_values=True):
                query.setdefault(name, []).append(value)
            response = server.gateway.handle(self.command, path, headers, query, body, self.client_address[0])
            self._send(response.status, response.body.encode(), response.headers)
            return None

        def _static(self, path: str) -> None:
            relative = "index.html" if path == "/" else path.removeprefix("/console/")
            file = (CONSOLE_DIR / relative).resolve()
            if not file.is_relative_to(CONSOLE_DIR) or not file.is_file():
                return self._json(404, {"error": {"code": "not_found", "message": "No such file."}})
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            self._send(200, file.read_bytes(), {"Content-Type": content_type, "Cache-Control": "no-store"})
            return None

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch  # noqa: N815 (stdlib names)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument(
        "--dynamodb-endpoint",
        default=os.environ.get("DYNAMODB_ENDPOINT_URL"),
        help="Any DynamoDB-compatible endpoint (default: an embedded moto server)",
    )
    parser.add_argument("--cleanup-interval", type=float, help="Seconds between cleanup runs (default: template)")
    args = parser.parse_args(argv)
    server = DevServer(args.host, args.port, args.dynamodb_endpoint, args.cleanup_interval)
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
        server.serve()
    except KeyboardInterrupt:
        print("\nStopping...", flush=True)
    finally:
        server.stop()
    print("Stopped.", flush=True)
    return 0
