"""Interleaved benchmarking: every candidate measured in the same rounds, so noise hits them alike."""

from __future__ import annotations

import os
import statistics
import threading
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


def interleaved(steps: dict[str, Callable[[], None]], budget_s: float, rounds: int = 4,
                warm_calls: int = 3, duty: float = 1.0) -> tuple[dict[str, list[float]], Run]:
    """Rounds of blocks: in each round every step runs alone for an equal slice of the budget (order
    rotated, so slow drift hits everyone alike), and the first calls of each block are not counted.
    Blocks rather than single calls: runtimes keep worker threads spinning after a call, so single-call
    interleaving measures each candidate against the previous one's threads, not as it will serve.
    `duty` < 1 rests after each block (its length × (1/duty − 1)): measuring beside a serving model, at its
    priority — a lower one starves the multi-threaded candidates and ranks them wrong — but not all the time."""
    rest = threading.Event()
    for step in steps.values():
        for _ in range(WARMUP):
            step()
    samples: dict[str, list[float]] = {k: [] for k in steps}
    keys = list(steps)
    block_s = budget_s / max(1, rounds * len(keys))
    meter = other_cpu_meter()
    for r in range(rounds):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        for key in order if r % 2 == 0 else order[::-1]:
            samples[key] += _block(steps[key], block_s, warm_calls)
            if duty < 1.0:
                rest.wait(block_s * (1 / duty - 1))
    other = meter()
    return samples, Run(rounds, other, other > NOISY_CORE_SHARE)


def _block(step: Callable[[], None], seconds: float, warm_calls: int) -> list[float]:
    times: list[float] = []
    deadline = time.monotonic() + seconds
    calls = 0
    while calls < warm_calls + 2 or time.monotonic() < deadline:
        start = time.perf_counter()
        step()
        if calls >= warm_calls:
            times.append((time.perf_counter() - start) * 1000)
        calls += 1
    return times


def median_p90(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
