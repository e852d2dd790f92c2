"""Time helpers. Every timestamp is stored as whole epoch seconds (UTC)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]
"""Returns the current time as epoch seconds; tests substitute a fake clock."""

system_clock: Clock = time.time


def to_iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
