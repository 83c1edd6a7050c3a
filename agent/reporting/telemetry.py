"""Periodic telemetry: per-camera fps and skips, latency percentiles, runtime, CPU, memory, temperature, disk."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from fleet.messages import CameraBrief, CameraStats, Telemetry

from ..video.pipeline import Pipeline
from .capacity import CameraCost, cores, estimate
from .quality import QualityTracker


@dataclass(frozen=True)
class Mark:
    """A camera's counters at the previous telemetry."""

    at: float
    processed: int = 0
    frames: int = 0
    decode_cpu_s: float = 0.0
    busy_s: float = 0.0


def temperature_c() -> float | None:
    try:
        temps = psutil.sensors_temperatures()
    except (AttributeError, OSError):
        return None
    readings = [t.current for group in temps.values() for t in group if t.current]
    return round(max(readings), 1) if readings else None


class TelemetryBuilder:
    def __init__(self, device: str, state_dir: Path, started: float, quality: QualityTracker | None = None) -> None:
        self.device, self.state_dir, self.started = device, state_dir, started
        self.quality = quality
        self._last: dict[str, Mark] = {}
        self._proc = psutil.Process()
        self._proc.cpu_percent()
        self._cpu_s = self._process_cpu()
        self._built_at = started
        self._costs: list[CameraCost] = []

    def build(self, seq: int, pipelines: list[Pipeline], windows: dict[str, list[float]],
              runtime: Callable[[], tuple[str | None, str | None]], outbox_depth: int,
              outbox_dropped: int) -> Telemetry:
        """`windows`: each camera's latencies over this interval (`PipelineStats.take_window`)."""
        now = time.monotonic()
        marks = dict(self._last)
        self._costs = []
        cameras = {p.camera.id: self._camera(p, now) for p in pipelines}
        lat = sorted(v for w in windows.values() for v in w)
        rt, executes_on = runtime()
        system, spent, others = self._cpu_split(now)
        infer_cpu = self._infer_cpu(spent, pipelines, marks)
        serve_s = self._serve_s(pipelines, marks)
        return Telemetry(
            device=self.device, seq=seq, ts=time.time(), uptime_s=round(now - self.started, 1), cameras=cameras,
            fps=round(sum(c.fps for c in cameras.values()), 2), p50_ms=_pct(lat, 0.5), p95_ms=_pct(lat, 0.95),
            runtime=rt, executes_on=executes_on, cpu_pct=round(system, 1),
            mem_mb=round(self._proc.memory_info().rss / 1e6, 1), temp_c=temperature_c(),
            disk_free_mb=round(shutil.disk_usage(self.state_dir).free / 1e6), outbox_depth=outbox_depth,
            outbox_dropped=outbox_dropped, infer_cpu_ms=round(infer_cpu * 1000, 2) if infer_cpu is not None else None,
            capacity=estimate(self._costs, infer_cpu, serve_s, cores(), others))

    def _process_cpu(self) -> float:
        t = self._proc.cpu_times()
        return float(t.user + t.system)

    def _cpu_split(self, now: float) -> tuple[float, float, float]:
        """The machine's CPU % this interval, our process's CPU seconds, and the cores others used."""
        cpu = self._process_cpu()
        spent, self._cpu_s = cpu - self._cpu_s, cpu
        span, self._built_at = max(now - self._built_at, 1e-6), now
        system = psutil.cpu_percent()
        return system, spent, max(0.0, system / 100 * cores() - spent / span)

    def _infer_cpu(self, spent: float, pipelines: list[Pipeline], marks: dict[str, Mark]) -> float | None:
        """The process's CPU this interval besides decoding, per answer (the counters `_camera` just took)."""
        before = [marks.get(p.camera.id, Mark(self.started)) for p in pipelines]
        after = [self._last[p.camera.id] for p in pipelines]
        decode = sum(a.decode_cpu_s - b.decode_cpu_s for a, b in zip(after, before, strict=True))
        answers = sum(a.processed - b.processed for a, b in zip(after, before, strict=True))
        return max(spent - decode, 0.0) / answers if answers else None

    def _serve_s(self, pipelines: list[Pipeline], marks: dict[str, Mark]) -> float | None:
        """The serving thread's seconds per answer this interval."""
        pairs = [(self._last[p.camera.id], marks.get(p.camera.id, Mark(self.started))) for p in pipelines]
        answers = sum(a.processed - b.processed for a, b in pairs)
        return sum(a.busy_s - b.busy_s for a, b in pairs) / answers if answers else None

    def _camera(self, p: Pipeline, now: float) -> CameraStats:
        cam = p.camera.stats
        last = self._last.get(p.camera.id, Mark(self.started))
        span = max(now - last.at, 1e-6)
        self._last[p.camera.id] = Mark(now, p.stats.processed, cam.frames, cam.decode_cpu_s, p.stats.busy_s)
        fps, in_fps = (p.stats.processed - last.processed) / span, (cam.frames - last.frames) / span
        decode = (cam.decode_cpu_s - last.decode_cpu_s) / span
        rate = 1.0 / p.rate.interval if p.rate.interval else fps
        self._costs.append(CameraCost(p.camera.id, cam.width, cam.height, in_fps, decode, rate))
        glass = sorted(p.stats.take_glass())
        quality = self.quality.take(p.camera.id, now) if self.quality is not None else None
        return CameraStats(model=p.model, fps=round(fps, 2), frames=p.stats.processed, skipped=cam.skipped,
                           connected=cam.connected, quality=quality, in_fps=round(in_fps, 2),
                           width=cam.width or None, height=cam.height or None, decoder=cam.decoder or None,
                           decode_cpu_pct=round(decode * 100, 1), infer_fps=rate if p.rate.interval else None,
                           glass_p50_ms=_pct(glass, 0.5), glass_p95_ms=_pct(glass, 0.95))


def briefs(t: Telemetry) -> dict[str, CameraBrief]:
    """Each camera as the device's status shows it."""
    return {cam: CameraBrief(connected=c.connected, fps=c.fps, glass_p50_ms=c.glass_p50_ms,
                             glass_p95_ms=c.glass_p95_ms) for cam, c in t.cameras.items()}


def percentile(values: list[float], q: float) -> float | None:
    return _pct(sorted(values), q)


def _pct(ordered: list[float], q: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None
