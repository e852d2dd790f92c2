"""Figures 3 and 7: cold start and peak memory of each handler, against a bare boto3 process.

Every repetition spawns fresh interpreters (bench/coldstart_child.py): one imports a
handler and serves its first event; its baseline, spawned right before or after it,
does `import boto3; boto3.client("dynamodb")` plus one consistent GetItem of a token item
when the handler's first event reads DynamoDB (none otherwise). The cold start is the time
from spawn to the event served (interpreter start, imports, client creation, the event).
`python -X importtime` runs list what the imports cost. Import after `environment.configure`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import seeding
from bench.backends import client
from bench.environment import ROOT, TABLE_NAME, WorkerSettings
from bench.timing import median
from devserver.template import function
from token_service.attribute_values import serialize
from token_service.cleanup import WATERMARK_KEY
from token_service.token_format import generate_token

CHILD = Path(__file__).resolve().parent / "coldstart_child.py"
EVENTS = ROOT / "events"
AUTHORIZER = "AuthorizerFunction"
IMPORTTIME_FUNCTIONS = (AUTHORIZER, "CreateTokenFunction")
# The sample events' caller and the token that token_self_get.json presents.
MEMBER = "7d3f1c2a-5b8e-4f6a-9c1d-2e4b6a8c0f13"
ORG = "org-acme"
SELF_TOKEN_ID = "3hZ8qLr0Vx2mN5pK"  # noqa: S105 (a token id, public)
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:benchapi01/dev/GET/v1/reports"


def _load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


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
        self._put(
            seeding.record(
                generated.token_id,
                org_id=ORG,
                owner_id=MEMBER,
                now=now,
                secret_hash=generated.secret_hash(),
                last_used_at=int(now),
            )
        )
        self._put(seeding.record(SELF_TOKEN_ID, org_id=ORG, owner_id=MEMBER, now=now))
        today = datetime.fromtimestamp(now, UTC).date().isoformat()
        self.dynamodb.put_item(TableName=TABLE_NAME, Item=serialize({**WATERMARK_KEY, "next_day": today}))

    def _put(self, record: Any) -> None:
        self.dynamodb.put_item(TableName=TABLE_NAME, Item=next(seeding.items([record])))

    def for_function(self, name: str) -> dict[str, Any]:
        makers: dict[str, Callable[[], dict[str, Any]]] = {
            AUTHORIZER: lambda: {
                "type": "TOKEN",
                "authorizationToken": f"Bearer {self.token}",
                "methodArn": METHOD_ARN,
            },
            "CreateTokenFunction": self._create,
            "ListTokensFunction": lambda: _load("list_tokens.json"),
            "RevokeTokensFunction": self._revoke,
            "ScopesFunction": lambda: _load("list_scopes.json"),
            "SettingsFunction": lambda: _load("get_settings.json"),
            "TokenSelfFunction": lambda: _load("token_self_get.json"),
            "CleanupFunction": lambda: _load("cleanup_scheduled.json"),
        }
        return makers[name]()

    def _authorize(self) -> dict[str, Any]:
        return {"type": "TOKEN", "authorizationToken": f"Bearer {self.token}", "methodArn": METHOD_ARN}

    def _create(self) -> dict[str, Any]:
        event = _load("create_token.json")
        body = json.loads(event["body"])
        body.pop("expires_at", None)  # the organisation's default lifetime: valid whatever today is
        event["body"] = json.dumps(body)
        return event

    def _revoke(self) -> dict[str, Any]:
        """Each run revokes a token of its own (a first revoke, not an idempotent repeat)."""
        self.revoked += 1
        identifier = seeding.token_id(self.revoked, "coldrv")
        self._put(seeding.record(identifier, org_id=ORG, owner_id=MEMBER, now=self.now))
        event = copy.deepcopy(_load("revoke_token.json"))
        event["path"] = f"/tokens/{identifier}"
        event["pathParameters"] = {"token_id": identifier}
        return event


FUNCTIONS = (
    AUTHORIZER,
    "CreateTokenFunction",
    "ListTokensFunction",
    "RevokeTokensFunction",
    "ScopesFunction",
    "SettingsFunction",
    "TokenSelfFunction",
    "CleanupFunction",
)


SPAWNER = Path(__file__).resolve().parent / "spawner.py"
SIDES = ("handler", "baseline")


class Plan:
    """Cold-start processes to spawn, in order, through bench/spawner.py (see there why)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.commands: list[dict[str, Any]] = []
        self.tags: list[tuple[str, ...]] = []
        self.spawned = 0

    def add(self, tag: tuple[str, ...], arguments: list[str], *, importtime: bool = False) -> None:
        index = self.spawned + len(self.commands)
        result = self.workdir / f"result-{index}.json"
        flags = ["-X", "importtime"] if importtime else []
        self.commands.append(
            {
                "argv": [sys.executable, *flags, str(CHILD), str(result), *arguments],
                "stderr": str(self.workdir / f"stderr-{index}.txt"),
                "result": str(result),
            }
        )
        self.tags.append(tag)

    def run(self) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
        """Spawns everything planned so far; returns (tag, the child's result) in order."""
        plan_file, out_file = self.workdir / "plan.json", self.workdir / "outcomes.json"
        plan_file.write_text(json.dumps(self.commands))
        subprocess.run(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(SPAWNER), str(plan_file), str(out_file)], check=True, env=os.environ.copy()
        )
        results = []
        for tag, command, outcome in zip(self.tags, self.commands, json.loads(out_file.read_text()), strict=True):
            stderr = Path(command["stderr"]).read_text()
            if outcome["returncode"] != 0:
                raise RuntimeError(f"cold start child failed: {stderr[-2000:]}")
            result: dict[str, Any] = json.loads(Path(command["result"]).read_text())
            result["cold_start_s"] = (result["served_ns"] - outcome["started_ns"]) / 1e9
            result["stderr"] = stderr
            results.append((tag, result))
        self.spawned += len(self.commands)
        self.commands, self.tags = [], []
        return results


def _handler_arguments(name: str, event: dict[str, Any], workdir: Path, run: int) -> list[str]:
    event_file = workdir / f"event-{name}-{run}.json"
    event_file.write_text(json.dumps(event))
    return ["handler", str(function(name).code_dir), str(event_file)]


_IMPORTTIME_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def _parse_importtime(output: str) -> list[tuple[int, int, int, str]]:
    """(depth, self µs, cumulative µs, module) of each import after the interpreter's own start-up
    (which ends with `site`); depth 0 = imported by the script itself."""
    parsed = []
    for line in output.splitlines():
        found = _IMPORTTIME_LINE.match(line)
        if found:
            depth = (len(found.group(3)) - 1) // 2
            parsed.append((depth, int(found.group(1)), int(found.group(2)), found.group(4)))
    start = next((index + 1 for index, line in enumerate(parsed) if line[0] == 0 and line[3] == "site"), 0)
    return parsed[start:]


def import_profile(outputs: list[str]) -> dict[str, Any]:
    """Over the runs (medians): the script's top-level imports by cumulative µs, and each
    package's own time (the self µs of all its modules: no double counting)."""
    cumulative: list[dict[str, int]] = []
    own: list[dict[str, int]] = []
    modules: list[dict[str, int]] = []
    totals: list[int] = []
    for output in outputs:
        top: dict[str, int] = {}
        packages: dict[str, int] = {}
        lines = _parse_importtime(output)
        for depth, self_us, cumulative_us, module in lines:
            if depth == 0:
                top[module] = top.get(module, 0) + cumulative_us
            package = module.split(".")[0]
            packages[package] = packages.get(package, 0) + self_us
        cumulative.append(top)
        own.append(packages)
        modules.append({module: self_us for _, self_us, _, module in lines})
        totals.append(sum(line[1] for line in lines))

    def medians(runs: list[dict[str, int]]) -> dict[str, float]:
        return {name: median([run.get(name, 0) for run in runs]) for name in set().union(*runs)}

    return {
        "top": medians(cumulative),
        "packages": medians(own),
        "modules": medians(modules),
        "total_us": median(totals),
    }


def _ranked(values: dict[str, float], limit: int = 10) -> list[tuple[str, float]]:
    return sorted(values.items(), key=lambda item: item[1], reverse=True)[:limit]


def summarize_imports(handler: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    total = handler["total_us"]
    extra: dict[str, float] = {}  # modules the baseline process never imports, by package
    for module, self_us in handler["modules"].items():
        if module not in baseline["modules"]:
            package = module.split(".")[0]
            extra[package] = extra.get(package, 0) + self_us
    return {
        "total_us": int(total),
        "baseline_total_us": int(baseline["total_us"]),
        "top": [
            {"module": name, "cumulative_us": int(value), "share": value / total}
            for name, value in _ranked(handler["top"])
        ],
        "packages": [
            {"package": name, "self_us": int(value), "share": value / total}
            for name, value in _ranked(handler["packages"])
        ],
        "extra": [{"package": name, "self_us": int(value)} for name, value in _ranked(extra) if value > 0],
    }


def run(settings: WorkerSettings) -> dict[str, Any]:
    quick = settings.quick
    events = Events(client("dynamodb", settings.endpoint), time.time())
    authorizer_repetitions = 4 if quick else 9
    other_repetitions = 2 if quick else 6
    importtime_runs = 1 if quick else 3
    results: dict[str, Any] = {"functions": {}, "importtime": {}, "dev_packages": {}}
    with tempfile.TemporaryDirectory(prefix="bench-coldstart-") as directory:
        workdir = Path(directory)
        plan = Plan(workdir)
        runs = 0

        def handler(name: str, *extra: str) -> list[str]:
            nonlocal runs
            runs += 1
            return [*_handler_arguments(name, events.for_function(name), workdir, runs), *extra]

        # One untimed run each: fills the page cache, and tells which handler reads DynamoDB.
        for name in FUNCTIONS:
            plan.add(("first", name), handler(name, "--count"))
        plan.add(("first", "baseline"), ["baseline", "--count"])
        baseline_arguments: dict[str, list[str]] = {}
        for (_, name), first in plan.run()[: len(FUNCTIONS)]:
            reads = any(call.startswith("dynamodb:") for call in first["calls"])
            baseline_arguments[name] = ["baseline", *(["--get-item", f"TOKEN#{events.token_id}"] if reads else [])]
            results["functions"][name] = {
                "calls": first["calls"],
                "baseline": "import boto3; boto3.client('dynamodb')" + ("; one GetItem" if reads else ""),
                **{
                    f"{side}_{field}": []
                    for side in ("handler", "baseline")
                    for field in ("s", "in_script_s", "maxrss_kib")
                },
            }

        # Each handler run next to its baseline run, the pair's order alternating.
        for repetition in range(authorizer_repetitions):
            names = FUNCTIONS if repetition < other_repetitions else (AUTHORIZER,)
            shift = repetition % len(names)
            for name in names[shift:] + names[:shift]:
                pair = [
                    (("timed", name, "handler"), handler(name)),
                    (("timed", name, "baseline"), baseline_arguments[name]),
                ]
                for tag, arguments in pair if repetition % 2 == 0 else reversed(pair):
                    plan.add(tag, arguments)
        # The authorizer again with the venv's dev-only packages importable (as `make dev` runs it).
        for repetition in range(other_repetitions):
            pair = [
                (("dev", AUTHORIZER, "handler"), handler(AUTHORIZER, "--dev-packages")),
                (("dev", AUTHORIZER, "baseline"), [*baseline_arguments[AUTHORIZER], "--dev-packages"]),
            ]
            for tag, arguments in pair if repetition % 2 == 0 else reversed(pair):
                plan.add(tag, arguments)
        for _ in range(importtime_runs):
            for name in IMPORTTIME_FUNCTIONS:
                plan.add(("importtime", name), handler(name), importtime=True)
            plan.add(("importtime", "baseline"), baseline_arguments[AUTHORIZER], importtime=True)

        importtime_outputs: dict[str, list[str]] = {name: [] for name in (*IMPORTTIME_FUNCTIONS, "baseline")}
        for tag, measured in plan.run():
            if tag[0] == "timed":
                entry = results["functions"][tag[1]]
                entry[f"{tag[2]}_s"].append(measured["cold_start_s"])
                entry[f"{tag[2]}_in_script_s"].append(measured["in_script_s"])
                entry[f"{tag[2]}_maxrss_kib"].append(measured["maxrss_kib"])
            elif tag[0] == "dev":
                results["dev_packages"].setdefault(f"{tag[2]}_s", []).append(measured["cold_start_s"])
            elif tag[0] == "importtime":
                importtime_outputs[tag[1]].append(measured["stderr"])
        baseline_imports = import_profile(importtime_outputs.pop("baseline"))
        for name, outputs in importtime_outputs.items():
            results["importtime"][name] = summarize_imports(import_profile(outputs), baseline_imports)
        results["processes"] = plan.spawned
    return results
