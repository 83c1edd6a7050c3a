"""Interleaved benchmarking: every candidate measured in the same rounds, so noise hits them alike."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

WARMUP = 3
NOISY_CORE_SHARE = 0.25  # other processes using more than a quarter core makes a run noisy


@dataclass(frozen=True)
class Run:
    rounds: int
    other_cpu: float  # cores' worth of CPU used by other processes during the run
    noisy: bool


def other_cpu_meter() -> Callable[[], float]:
    """Start measuring; the returned function gives other processes' CPU (in cores) since the start."""
    me = psutil.Process(os.getpid())
    sys0, own0, t0 = psutil.cpu_times(), me.cpu_times(), time.monotonic()

    def stop() -> float:
        sys1, own1, elapsed = psutil.cpu_times(), me.cpu_times(), time.monotonic() - t0
        busy = (sys1.user - sys0.user) + (sys1.system - sys0.system) + (sys1.nice - sys0.nice)
        own = (own1.user - own0.user) + (own1.system - own0.system)
        return max(0.0, busy - own) / max(elapsed, 1e-6)

    return stop


def interleaved(steps: dict[str, Callable[[], None]], budget_s: float, min_rounds: int = 10,
                max_rounds: int = 500) -> tuple[dict[str, list[float]], Run]:
    """Warm up each step, then run rounds (each step once per round, order rotated) within the budget."""
    for step in steps.values():
        for _ in range(WARMUP):
            step()
    samples: dict[str, list[float]] = {k: [] for k in steps}
    keys = list(steps)
    meter, deadline, rounds = other_cpu_meter(), time.monotonic() + budget_s, 0
    while rounds < max_rounds and (rounds < min_rounds or time.monotonic() < deadline):
        order = keys[rounds % len(keys):] + keys[: rounds % len(keys)]
        for key in order:
            start = time.perf_counter()
            steps[key]()
            samples[key].append((time.perf_counter() - start) * 1000)
        rounds += 1
    other = meter()
    return samples, Run(rounds, other, other > NOISY_CORE_SHARE)


def median_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
