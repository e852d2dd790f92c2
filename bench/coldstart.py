"""Figures 3 and 7: cold start and peak memory of each function as `sam build` outputs it.

bench/artifacts.py builds the stack and lays out read-only copies as Lambda runs them. Every
repetition spawns fresh python3.13 interpreters (bench/coldstart_child.py) with
PYTHONDONTWRITEBYTECODE=1: one imports a function's handler with only that function's
folder, the layer and the runtime stand-in on sys.path, in its template environment, and
serves its first event; its baseline, spawned right before or after it, does
`import boto3; boto3.client("dynamodb")` plus one consistent GetItem of a token item with
only the runtime stand-in on sys.path. The cold start is the time from spawn to the event
served. Import after `environment.configure`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import artifacts, seeding
from bench.backends import client
from bench.environment import ROOT, TABLE_NAME, WorkerSettings
from token_service.domain.token_format import generate_token
from token_service.storage.attribute_values import serialize
from token_service.storage.items import WATERMARK_KEY

HERE = Path(__file__).resolve().parent
AUTHORIZER = "AuthorizerFunction"
# Each function's first event: a sample event of events/ (None: built below).
FUNCTIONS: dict[str, str | None] = {
    AUTHORIZER: None,
    "CreateTokenFunction": "create_token.json",
    "ListTokensFunction": "list_tokens.json",
    "RevokeTokensFunction": "revoke_token.json",
    "ScopesFunction": "list_scopes.json",
    "SettingsFunction": "get_settings.json",
    "AuditFunction": "list_audit.json",
    "TokenSelfFunction": "token_self_get.json",
    "CacheFlushFunction": "cache_flush_sqs.json",
    "CleanupFunction": "cleanup_scheduled.json",
}
# The sample events' caller and the token that token_self_get.json presents.
MEMBER = "7d3f1c2a-5b8e-4f6a-9c1d-2e4b6a8c0f13"
ORG = "org-acme"
SELF_TOKEN_ID = "3hZ8qLr0Vx2mN5pK"  # noqa: S105 (a token id, public)


class Events:
    """The first event of each function: the sample events of events/, made to succeed."""

    def __init__(self, dynamodb: Any, now: float) -> None:
        self.dynamodb = dynamodb
        self.now = now
        self.revoked = 0
        # The authorizer's token was used just now: its first event is one GetItem and no
        # last-use write (that write happens at most once per 10 minutes per token).
        generated = generate_token("lgk")
        self.token = generated.token
        self.token_id = generated.token_id
        self._put(generated.token_id, secret_hash=generated.secret_hash(), last_used_at=int(now))
        self._put(SELF_TOKEN_ID)
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        self.dynamodb.put_item(TableName=TABLE_NAME, Item=serialize({**WATERMARK_KEY, "next_day": today}))

    def _put(self, token_id: str, **fields: Any) -> None:
        record = seeding.record(token_id, org_id=ORG, owner_id=MEMBER, now=self.now, **fields)
        self.dynamodb.put_item(TableName=TABLE_NAME, Item=next(seeding.items([record])))

    def for_function(self, name: str) -> dict[str, Any]:
        sample = FUNCTIONS[name]
        if sample is None:
            return seeding.token_event(self.token)
        event: dict[str, Any] = json.loads((ROOT / "events" / sample).read_text())
        if name == "CreateTokenFunction":  # the organisation's default lifetime: valid whatever today is
            body = json.loads(event["body"])
            body.pop("expires_at", None)
            event["body"] = json.dumps(body)
        elif name == "RevokeTokensFunction":  # each run revokes a token of its own (a first revoke)
            self.revoked += 1
            identifier = seeding.token_id(self.revoked, "coldrv")
            self._put(identifier)
            event["path"] = f"/tokens/{identifier}"
            event["pathParameters"] = {"token_id": identifier}
        return event


class FlushAnswerer:
    """API Gateway's FlushStageAuthorizersCache for the revoke's first event: 202, as API Gateway
    answers for an existing stage. moto does not implement the operation; without this, that
    event would take the failure path (the flush queued for a retry) that a deployment does not."""

    PATH = re.compile(r"/restapis/[^/]+/stages/[^/]+/cache/authorizers")

    def __init__(self) -> None:
        flushed: list[str] = []
        self.flushed = flushed

        class Handler(BaseHTTPRequestHandler):
            def do_DELETE(self) -> None:
                found = FlushAnswerer.PATH.fullmatch(self.path)
                if found:
                    flushed.append(self.path)
                self.send_response(202 if found else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


class Plan:
    """Cold-start processes to spawn, in order, through bench/spawner.py (see there why)."""

    def __init__(self, workdir: Path, layout: dict[str, Any]) -> None:
        self.workdir = workdir
        self.layout = layout
        self.commands: list[dict[str, Any]] = []
        self.tags: list[Any] = []
        self.spawned = 0

    def add(self, tag: Any, arguments: list[str], environment: dict[str, str]) -> None:
        index = self.spawned + len(self.commands)
        result = self.workdir / f"result-{index}.json"
        python, child = self.layout["python"], self.layout["child"]
        self.commands.append(
            {
                "argv": [python, "-S", child, str(result), *arguments],
                "stderr": str(self.workdir / f"stderr-{index}.txt"),
                "result": str(result),
                "env": environment,
            }
        )
        self.tags.append(tag)

    def run(self) -> list[tuple[Any, dict[str, Any]]]:
        """Spawns everything planned so far; returns (tag, the child's result) in order."""
        plan_file, out_file = self.workdir / "plan.json", self.workdir / "outcomes.json"
        plan_file.write_text(json.dumps(self.commands))
        subprocess.run(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(HERE / "spawner.py"), str(plan_file), str(out_file)], check=True, env=os.environ.copy()
        )
        results = []
        for tag, command, outcome in zip(self.tags, self.commands, json.loads(out_file.read_text()), strict=True):
            if outcome["returncode"] != 0:
                raise RuntimeError(f"cold start child failed: {Path(command['stderr']).read_text()[-2000:]}")
            result: dict[str, Any] = json.loads(Path(command["result"]).read_text())
            result["cold_start_s"] = (result["served_ns"] - outcome["started_ns"]) / 1e9
            results.append((tag, result))
        self.spawned += len(self.commands)
        self.commands, self.tags = [], []
        return results


def run(settings: WorkerSettings) -> dict[str, Any]:
    dynamodb = client("dynamodb", settings.endpoint)
    events = Events(dynamodb, time.time())
    queue_url = client("sqs", settings.events_endpoint).create_queue(QueueName=artifacts.QUEUE_NAME)["QueueUrl"]
    repetitions = 3 if settings.quick else 7
    names = list(FUNCTIONS)
    api_gateway = FlushAnswerer()
    endpoints = {
        "dynamodb": settings.endpoint,
        "events": settings.events_endpoint,
        "apigateway": api_gateway.endpoint,
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as directory:
        layout = artifacts.build(Path(directory), names)
        try:
            plan = Plan(Path(directory), layout)
            environments = {name: artifacts.environment(name, endpoints, queue_url) for name in names}
            base_environment = artifacts.environment(AUTHORIZER, endpoints, queue_url)
            shared = [layout["layer"], layout["runtime"]]
            paths = {name: os.pathsep.join([layout["tasks"][name], *shared]) for name in names}
            baseline = [layout["runtime"], "baseline", "--get-item", f"TOKEN#{events.token_id}"]

            def handler(name: str, *extra: str) -> list[str]:
                event_file = plan.workdir / f"event-{plan.spawned + len(plan.commands)}.json"
                event_file.write_text(json.dumps(events.for_function(name)))
                return [paths[name], "handler", str(event_file), *extra]

            # One untimed run each: fills the page cache, and checks that the first event succeeds.
            for name in names:
                plan.add(name, handler(name, "--count"), environments[name])
            plan.add("baseline", [*baseline, "--count"], base_environment)
            first_runs = plan.run()
            for name, first in first_runs[: len(names)]:
                if any(call.startswith(("raised:", "status:4", "status:5")) for call in first["calls"]):
                    raise RuntimeError(f"{name}'s first event failed: {first['calls']}")
                results[name] = {"calls": first["calls"], "awscrt": first["awscrt"], "botocore": first["botocore"]}
            if not api_gateway.flushed:
                raise RuntimeError("the revoke's first event did not flush the authorizer cache")

            # Each function next to its baseline, the pair's order alternating, functions rotating.
            for repetition in range(repetitions):
                shift = repetition % len(names)
                for name in names[shift:] + names[:shift]:
                    pair = [((name, "handler"), handler(name), environments[name])]
                    pair.append(((name, "baseline"), baseline, base_environment))
                    for tag, arguments, environment in pair if repetition % 2 == 0 else reversed(pair):
                        plan.add(tag, arguments, environment)
            for (name, side), measured in plan.run():
                results[name].setdefault(f"{side}_s", []).append(measured["cold_start_s"])
                results[name].setdefault(f"{side}_maxrss_kib", []).append(measured["maxrss_kib"])
                results[name]["awscrt"] = results[name]["awscrt"] or measured["awscrt"]
        finally:
            artifacts.cleanup(layout["root"])
            api_gateway.stop()
    return {
        "functions": results,
        "baseline_calls": first_runs[-1][1]["calls"],
        "swapped": layout["swapped"],
        "runtime_packages": layout["runtime_packages"],
        "python": layout["python"],
    }
