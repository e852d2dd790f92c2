"""DynamoDB endpoints on loopback: moto's server (always) and dynalite (when installed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import EVENT_BUS_NAME, REGION, ROOT, TABLE_NAME
from bench.machine import package_version

DYNALITE_ENV = "BENCH_DYNALITE"


@dataclass
class Backend:
    """A running DynamoDB implementation the bench started (stop() ends it)."""

    name: str
    endpoint: str
    version: str
    process: subprocess.Popen[Any] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Closes the moto server's stdin (it then stops itself), or terminates dynalite."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
                return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_moto() -> Backend:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.motoserver"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.isdigit():
        process.kill()
        raise RuntimeError("moto server did not start")
    backend = Backend("moto", f"http://127.0.0.1:{line}", package_version("moto"), process)
    prepare(backend.endpoint, events=True)
    return backend


def find_dynalite() -> Path | None:
    """BENCH_DYNALITE, else node_modules/.bin/dynalite (npm ci), else `dynalite` on PATH."""
    if not shutil.which("node"):
        return None
    candidates = [os.environ.get(DYNALITE_ENV), ROOT / "node_modules" / ".bin" / "dynalite", shutil.which("dynalite")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _dynalite_version(binary: Path) -> str:
    """From the package.json next to the script the binary links to (node_modules/dynalite/cli.js)."""
    import json

    for directory in (binary.resolve().parent, binary.resolve().parent.parent):
        with contextlib.suppress(OSError, ValueError, KeyError):
            package = json.loads((directory / "package.json").read_text())
            if package.get("name") == "dynalite":
                return f"dynalite {package['version']}"
    return "dynalite (version unknown)"


def start_dynalite(binary: Path) -> Backend:
    from devserver.dynalite import start_dynalite as launch_dynalite

    process, endpoint = launch_dynalite(binary)
    backend = Backend("dynalite", endpoint, _dynalite_version(binary), process)
    prepare(backend.endpoint, events=False)
    return backend


def client(service: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 (a local endpoint takes any credentials)
    )


def create_table(endpoint: str, name: str = TABLE_NAME) -> None:
    """The table exactly as template.yaml defines it (devserver.template.table_definition)."""
    from devserver.template import table_definition

    dynamodb = client("dynamodb", endpoint)
    if name in dynamodb.list_tables()["TableNames"]:
        dynamodb.delete_table(TableName=name)
        dynamodb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1})
    dynamodb.create_table(TableName=name, **table_definition())
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})


def prepare(endpoint: str, *, events: bool) -> None:
    create_table(endpoint)
    if events:  # the cleanup publishes to the stack's bus (moto serves EventBridge too)
        client("events", endpoint).create_event_bus(Name=EVENT_BUS_NAME)
