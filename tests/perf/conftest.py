"""The perf tier: the bench's targets as tests (`make perf`, i.e. `pytest -m perf tests/perf`).

Not part of `make test` or a plain `pytest`: its tests are skipped unless the marker
expression asks for `perf`. They run the bench's own workers (bench/), in quick mode, against
a moto server (and dynalite when one is installed) started once per session.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import backends


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "perf" in (config.getoption("markexpr") or "").replace("not perf", ""):
        return
    skip = pytest.mark.skip(reason="performance targets: run with `make perf` (pytest -m perf tests/perf)")
    for item in items:
        if item.get_closest_marker("perf"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def bench_backends() -> Iterator[dict[str, Any]]:
    """The moto server and, when installed, dynalite, each with the bench's table; a work folder."""
    moto = backends.start_moto()
    binary = backends.find_dynalite()
    dynalite = backends.start_dynalite(binary) if binary else None
    try:
        with tempfile.TemporaryDirectory(prefix="perf-") as directory:
            yield {"moto": moto, "dynalite": dynalite, "workdir": Path(directory)}
    finally:
        moto.stop()
        if dynalite:
            dynalite.stop()
