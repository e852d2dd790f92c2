"""Starts dynalite (npm), a DynamoDB implementation with DynamoDB's own validation, on a free
loopback port: for the tests and the benchmarks, and for `make dev --dynamodb-endpoint`."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from devserver.template import ROOT

DYNALITE = ROOT / "node_modules" / ".bin" / "dynalite"  # installed by `npm ci`


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_dynalite(binary: Path = DYNALITE, timeout: float = 30) -> tuple[subprocess.Popen[bytes], str]:
    """Returns the process and its endpoint URL once it accepts connections. Tables are
    created and deleted at once (dynalite's default is a DynamoDB-like delay)."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 (our own binary, fixed arguments)
        [str(binary), "--port", str(port), "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("dynalite did not start") from None
            time.sleep(0.1)
