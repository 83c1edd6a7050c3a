"""How many cameras this device carries, estimated from what the ones it has cost over an interval.

Per camera: decoding (its thread's CPU, every frame the camera sends) plus its answers (the process's CPU
besides decoding, per answer, times the camera's rate). Two bounds, the lower wins: the cores (kept at
HEADROOM, for the system, the broker client and bursts) and the thread that serves the model, which
answers one call at a time (its measured time per answer: inference under this load, post-processing, handing
the answer on). Estimated for the costliest camera: the answer holds for every stream
the device has. On an accelerator the inference CPU is small and the model's latency is the bound.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from fleet.messages import Capacity

HEADROOM = 0.9


@dataclass(frozen=True)
class CameraCost:
    camera: str
    width: int
    height: int
    in_fps: float  # frames decoded per second
    decode_cores: float  # decode CPU seconds per second
    rate: float  # answers per second: the configured rate, else what it measured


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def estimate(costs: list[CameraCost], infer_cpu_s: float | None, serve_s: float | None,
             n_cores: int, other_cores: float = 0.0) -> Capacity | None:
    """None until a camera has answered and the interval measured the inference. `other_cores`: what other
    processes on the device used this interval, not ours to count on."""
    measured = [c for c in costs if c.rate > 0 and c.in_fps > 0]
    if not measured or infer_cpu_s is None or serve_s is None:
        return None
    worst = max(measured, key=lambda c: c.decode_cores + c.rate * infer_cpu_s)
    per_camera = worst.decode_cores + worst.rate * infer_cpu_s
    free = max(0.0, n_cores * HEADROOM - other_cores)
    by_cpu = math.floor(free / per_camera) if per_camera > 0 else 10_000
    by_model = math.floor(1.0 / (worst.rate * serve_s)) if serve_s > 0 else 10_000
    n, bound = (by_cpu, "cpu") if by_cpu <= by_model else (by_model, "serving")
    stream = f"{worst.width}x{worst.height}@{worst.in_fps:.0f}fps"
    rate = round(worst.rate, 2)
    return Capacity(cameras=n, results_per_s=rate, camera=worst.camera, stream=stream, bound=bound, cores=n_cores,
                    decode_cpu_pct=round(worst.decode_cores * 100, 1), infer_cpu_ms=round(infer_cpu_s * 1000, 2),
                    serve_ms=round(serve_s * 1000, 2), other_cpu_pct=round(other_cores * 100, 1),
                    summary=f"about {n} cameras of {stream} at {rate} results/s each ({bound}-bound)")
