"""Every target of docs/performance.md as a test that fails when it is missed.

Each test runs one figure's bench worker (quick mode: fewer samples than `make bench`) and
asserts every row the report would print for it. Ratios against baselines of the same run,
never absolute times. Targets are the report's own (bench/report.py), not restated here.
"""

from __future__ import annotations

from typing import Any

import pytest

from bench import report
from bench.__main__ import LATENCY_MS, _worker

pytestmark = pytest.mark.perf

SECTIONS = {heading: (key, build) for heading, key, _, build, _ in report.SECTIONS}
# (figure heading, setup): the worker's task and options, as `python -m bench` runs them.
CASES = [
    ("1. Authorizer warm decision", "moto", {}),
    ("1. Authorizer warm decision", "dynalite", {}),
    ("2. Malformed token", "moto", {}),
    ("2. Malformed token", "dynalite", {}),
    ("3. Cold start", "moto", {}),
    ("7. Peak memory", "moto", {}),
    ("4. Cleanup at 1,000 to 100,000 tokens", "moto", {"in_process": True}),
    ("4. Cleanup at 1,000 to 100,000 tokens", "dynalite", {}),
    ("5. Listing at 1,000 to 100,000 tokens", "moto", {"in_process": True}),
    ("5. Listing at 1,000 to 100,000 tokens", "dynalite", {}),
    ("6. Bulk revoke", "moto", {}),
    ("6. Bulk revoke", "dynalite", {}),
    ("6. Bulk revoke", "dynalite", {"latency_ms": LATENCY_MS}),
]
_results: dict[tuple[str, str, float, bool], dict[str, Any]] = {}


def _run(bench_backends: dict[str, Any], task: str, setup: str, options: dict[str, Any]) -> dict[str, Any]:
    backend = bench_backends[setup]
    if backend is None:
        pytest.skip(f"{setup} is not installed")
    in_process = bool(options.get("in_process"))
    latency = float(options.get("latency_ms", 0.0))
    key = (task, setup, latency, in_process)
    if key not in _results:  # figures 1 and 2 (3 and 7, 4 and 5) share one worker run
        _results[key] = _worker(
            task,
            None if in_process else backend,
            events=bench_backends["moto"].endpoint,
            quick=True,
            workdir=bench_backends["workdir"],
            latency_ms=latency,
        )
    return _results[key]


@pytest.mark.parametrize(
    ("heading", "setup", "options"),
    CASES,
    ids=[
        f"{heading.split('.')[0]}-{setup}{'-latency' if options.get('latency_ms') else ''}"
        for heading, setup, options in CASES
    ],
)
def test_target(bench_backends: dict[str, Any], heading: str, setup: str, options: dict[str, Any]) -> None:
    task, build = SECTIONS[heading]
    data = _run(bench_backends, task, setup, options)
    assert "error" not in data, f"the {task} worker failed: {data['error']}"
    rows = build(setup, data)
    missed = [f"{row.figure}: {row.measured} (target {row.target})" for row in rows if not row.met]
    assert not missed, "missed:\n" + "\n".join(missed)
