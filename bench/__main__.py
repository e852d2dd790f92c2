"""`make bench` (`.venv/bin/python -m bench`): runs every figure and writes docs/performance.md.

Starts a moto server (and dynalite, when one is installed) on loopback, runs each figure's
worker in a fresh process against them, then writes the report and prints its table. A
figure that fails to run is reported as not measured; the bench itself never fails a build.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import backends, machine, report
from bench.environment import ROOT

LATENCY_MS = 4.0  # emulated network round trip for the second bulk-revoke measurement


def _worker(
    task: str, backend: backends.Backend | None, events: str, quick: bool, workdir: Path, **options: Any
) -> dict[str, Any]:
    """Runs one task in a fresh process; returns its results, or {"error": ...}."""
    label = backend.name if backend else "moto-in-process"
    out = workdir / f"{task}-{label}-{options.get('latency_ms', 0)}.json"
    endpoint = backend.endpoint if backend else ""
    command = [sys.executable, "-m", "bench.worker", task, "--endpoint", endpoint, "--events-endpoint", events]
    command += ["--backend", backend.name if backend else "moto", "--out", str(out)]
    if quick:
        command.append("--quick")
    if options.get("latency_ms"):
        command += ["--latency-ms", str(options["latency_ms"])]
    started = time.perf_counter()
    print(f"  {task} on {label}{' +latency' if options.get('latency_ms') else ''} ...", end="", flush=True)
    completed = subprocess.run(  # noqa: S603 (our own module, fixed arguments)
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,  # the handlers' log and metric lines
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    print(f" {elapsed:.0f} s", flush=True)
    if completed.returncode != 0 or not out.exists():
        return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and sizes: a smoke run, not figures")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--no-dynalite", action="store_true", help="skip the dynalite column")
    arguments = parser.parse_args()
    started = time.perf_counter()
    host = machine.describe()
    print(f"bench: {host['cpu']} x{host['cores']}, Python {host['python']}", flush=True)

    moto = backends.start_moto()
    dynalite_binary = None if arguments.no_dynalite else backends.find_dynalite()
    dynalite = None
    if dynalite_binary:
        try:
            dynalite = backends.start_dynalite(dynalite_binary)
        except RuntimeError as error:  # the column is then absent, as without dynalite
            print(f"bench: {dynalite_binary}: {error}; no dynalite column", flush=True)
    results: dict[str, Any] = {"dynalite": f"{dynalite.version} ({dynalite_binary})" if dynalite else None}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as directory:
            workdir = Path(directory)
            run = functools.partial(_worker, events=moto.endpoint, quick=arguments.quick, workdir=workdir)
            setups = [moto, *([dynalite] if dynalite else [])]
            results["authorizer"] = {backend.name: run("authorizer", backend) for backend in setups}
            results["coldstart"] = {"moto": run("coldstart", moto)}
            results["revoke"] = {backend.name: run("revoke", backend) for backend in setups}
            if dynalite:
                results["revoke"][f"dynalite + {LATENCY_MS:g} ms emulated latency"] = run(
                    "revoke", dynalite, latency_ms=LATENCY_MS
                )
            results["scale"] = {"moto": run("scale", None)}
            if dynalite:
                results["scale"]["dynalite"] = run("scale", dynalite)
    finally:
        moto.stop()
        if dynalite:
            dynalite.stop()
    host["load_after"] = machine.load_average()
    runtime = time.perf_counter() - started
    document, table = report.render(results, host, runtime, quick=arguments.quick)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(document, encoding="utf-8")
    print()
    print(table)
    print(f"\nbench: {runtime:.0f} s; wrote {arguments.output}")


if __name__ == "__main__":
    main()
