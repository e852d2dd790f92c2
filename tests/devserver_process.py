"""Starts `python -m devserver` as a real process on a free port, for tests over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from devserver.template import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


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

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=all_headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 (loopback only)
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns the exit code and everything it printed."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=10)
        return code, self.output()


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
