"""Side-by-side timing: subject and baseline repetitions interleaved, medians compared.

The machine is small and noisy, so no absolute time is a figure on its own: each figure is
the ratio of the subject's median to a baseline's median measured in the same loop, the
two alternating (and swapping order every repetition) so that any slowdown hits both.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from statistics import median
from typing import Any


def paired_ratio(subject: Sequence[float], baseline: Sequence[float]) -> float:
    """The median of the per-pair ratios (a pair shares the machine's load of its moment)."""
    return median(s / b for s, b in zip(subject, baseline, strict=True))


def interleaved_calls(
    subject: Callable[[], object], baseline: Callable[[], object], *, pairs: int, warmup: int = 10
) -> dict[str, Any]:
    """Times single calls, alternating subject and baseline (the order swaps every pair);
    returns the medians in seconds, their ratio, and how many times the subject ran in all."""
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
    subject_s, baseline_s = median(subject_times), median(baseline_times)
    return {
        "subject_s": subject_s,
        "baseline_s": baseline_s,
        "ratio": subject_s / baseline_s,
        "pairs": pairs,
        "runs": warmup + pairs,
    }


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
