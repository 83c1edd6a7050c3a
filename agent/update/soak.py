"""The soak after an update switched models: the new model must keep answering without errors or failovers,
and, when the push asked for it, agree with the model it replaced on the same live frames (the shadow)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from fleet.messages import ShadowSummary

MIN_FRAMES = 10  # fewer frames than this in a window give no p95 worth comparing


class Watched(Protocol):
    def health(self) -> tuple[int, int, int]: ...  # frames processed, errors, failovers


def watch(host: Watched, soak_s: float, stop: threading.Event) -> str | None:
    """None when the new model stayed healthy for the soak time, else why not."""
    frames0, errors0, failovers0 = host.health()
    deadline = time.monotonic() + soak_s
    while not stop.wait(0.25):
        frames, errors, failovers = host.health()
        if errors > errors0:
            return f"soaking: {errors - errors0} inference error(s)"
        if failovers > failovers0:
            return "soaking: the new model failed over to its runner-up"
        if time.monotonic() >= deadline:
            return None if frames > frames0 or frames0 < 0 else "soaking: no frames processed"
    return "soaking: agent stopping"


def gate(min_agreement: float | None, shadow: ShadowSummary | None) -> str | None:
    """Why the new model's agreement with the previous one fails the push's minimum, if it does."""
    if min_agreement is None or shadow is None:  # no minimum asked, or nothing served before to compare with
        return None
    if shadow.agreement is None:
        return f"soaking: no frame compared with the previous model (--min-agreement {min_agreement})"
    if shadow.agreement < min_agreement:
        return (f"soaking: agreement with the previous model {shadow.agreement:.3f} < {min_agreement} "
                f"({shadow.frames} frames, {shadow.disagreeing} disagreeing)")
    return None


def figures(shadow: ShadowSummary | None) -> dict[str, Any]:
    """For the update's last event: the agreement on its own (push results read it) and the whole summary."""
    if shadow is None:
        return {}
    return {"agreement": shadow.agreement, "shadow": shadow.model_dump(mode="json")}


@dataclass(frozen=True)
class Perf:
    """A model's p95 latency and fps on this device's cameras over a window."""

    p95_ms: float
    fps: float
    frames: int


def perf(samples: list[tuple[float, float]], since: float, until: float) -> Perf | None:
    """From (when, latency) samples of every camera: None when too few frames fell in the window."""
    inside = [(t, ms) for t, ms in samples if since <= t <= until]
    if len(inside) < MIN_FRAMES:
        return None
    lat = sorted(ms for _, ms in inside)
    span = max(until - min(t for t, _ in inside), 1e-6)  # from its first frame: it may have started late
    return Perf(lat[min(len(lat) - 1, int(0.95 * len(lat)))], len(lat) / span, len(lat))


def gate_performance(max_p95_ratio: float | None, min_fps_ratio: float | None, before: Perf | None,
                     during: Perf | None) -> str | None:
    """Why the new model's latency or fps fails the push's gates against the previous model's, if it does."""
    if (max_p95_ratio is None and min_fps_ratio is None) or before is None:
        return None  # no gate asked, or no camera served before the update to compare with
    if during is None:
        return "soaking: too few frames to compare with the previous model's p95 and fps"
    ratio = during.p95_ms / before.p95_ms
    if max_p95_ratio is not None and ratio > max_p95_ratio:
        return (f"soaking: p95 {during.p95_ms:.1f} ms is {ratio:.2f}x the previous model's {before.p95_ms:.1f} ms "
                f"(--max-p95-ratio {max_p95_ratio})")
    fps_ratio = during.fps / before.fps
    if min_fps_ratio is not None and fps_ratio < min_fps_ratio:
        return (f"soaking: {during.fps:.1f} fps is {fps_ratio:.2f}x the previous model's {before.fps:.1f} "
                f"(--min-fps-ratio {min_fps_ratio})")
    return None


def perf_figures(before: Perf | None, during: Perf | None) -> dict[str, Any]:
    """For the update's last event (push results read these)."""
    out: dict[str, Any] = {}
    if during is not None:
        out |= {"p95_ms": round(during.p95_ms, 3), "fps": round(during.fps, 2)}
    if before is not None:
        out |= {"previous_p95_ms": round(before.p95_ms, 3), "previous_fps": round(before.fps, 2)}
    return out
