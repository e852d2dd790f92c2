"""Side-by-side timing: subject and baseline repetitions interleaved, medians compared.

The machine is small and noisy, so no absolute time is a figure on its own: each figure is
the ratio of the subject's median to a baseline's median measured in the same loop, the
two alternating (and swapping order every repetition) so that any slowdown hits both.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_BLOCK = 25  # repetitions per block: the spread of per-block ratios shows how stable a ratio is


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


@dataclass(frozen=True)
class Comparison:
    """Medians in seconds, their ratio, and the interquartile range of per-block ratios."""

    subject: float
    baseline: float
    ratio: float
    spread: tuple[float, float]
    repetitions: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_s": self.subject,
            "baseline_s": self.baseline,
            "ratio": self.ratio,
            "spread": list(self.spread),
            "repetitions": self.repetitions,
        }


def compare(subject_times: Sequence[float], baseline_times: Sequence[float], block: int = _BLOCK) -> Comparison:
    """Ratio of medians; the spread is over blocks of `block` consecutive pairs."""
    blocks = [
        median(subject_times[start : start + block]) / median(baseline_times[start : start + block])
        for start in range(0, len(subject_times), block)
        if len(subject_times[start : start + block]) >= max(1, block // 2)
    ] or [median(subject_times) / median(baseline_times)]
    return Comparison(
        subject=median(subject_times),
        baseline=median(baseline_times),
        ratio=median(subject_times) / median(baseline_times),
        spread=quartiles(blocks),
        repetitions=len(subject_times),
    )


def interleaved_calls(
    subject: Callable[[], object], baseline: Callable[[], object], *, pairs: int, warmup: int = 10, block: int = _BLOCK
) -> Comparison:
    """Times single calls, alternating subject and baseline (the order swaps every pair)."""
    for _ in range(warmup):
        subject()
        baseline()
    subject_times: list[float] = []
    baseline_times: list[float] = []
    clock = time.perf_counter_ns
    gc.collect()
    for index in range(pairs):
        order = ((subject, subject_times), (baseline, baseline_times))
        for function, times in order if index % 2 == 0 else reversed(order):
            start = clock()
            function()
            times.append((clock() - start) / 1e9)
    return compare(subject_times, baseline_times, block)


def interleaved_runs(variants: dict[str, Callable[[], float]], repetitions: int) -> dict[str, list[float]]:
    """Runs each variant once per repetition, rotating the order; each returns its own
    measured seconds (so that it can prepare outside the timed part)."""
    names = list(variants)
    results: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repetitions):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            results[name].append(variants[name]())
    return results
