"""Periodic telemetry: per-camera fps and skips, latency percentiles, runtime, CPU, memory, temperature, disk."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from fleet.messages import CameraStats, Telemetry

from ..video.pipeline import Pipeline
from .quality import QualityTracker


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
        self._last: dict[str, tuple[float, int]] = {}
        self._proc = psutil.Process()
        self._proc.cpu_percent()

    def build(self, seq: int, pipelines: list[Pipeline], windows: dict[str, list[float]],
              runtime: Callable[[], tuple[str | None, str | None]], outbox_depth: int,
              outbox_dropped: int) -> Telemetry:
        """`windows`: each camera's latencies over this interval (`PipelineStats.take_window`)."""
        now = time.monotonic()
        cameras = {p.camera.id: self._camera(p, now) for p in pipelines}
        lat = sorted(v for w in windows.values() for v in w)
        rt, executes_on = runtime()
        return Telemetry(
            device=self.device, seq=seq, ts=time.time(), uptime_s=round(now - self.started, 1), cameras=cameras,
            fps=round(sum(c.fps for c in cameras.values()), 2), p50_ms=_pct(lat, 0.5), p95_ms=_pct(lat, 0.95),
            runtime=rt, executes_on=executes_on, cpu_pct=round(psutil.cpu_percent(), 1),
            mem_mb=round(self._proc.memory_info().rss / 1e6, 1), temp_c=temperature_c(),
            disk_free_mb=round(shutil.disk_usage(self.state_dir).free / 1e6), outbox_depth=outbox_depth,
            outbox_dropped=outbox_dropped)

    def _camera(self, p: Pipeline, now: float) -> CameraStats:
        last_t, last_n = self._last.get(p.camera.id, (self.started, 0))
        fps = (p.stats.processed - last_n) / max(now - last_t, 1e-6)
        self._last[p.camera.id] = (now, p.stats.processed)
        quality = self.quality.take(p.camera.id, now) if self.quality is not None else None
        return CameraStats(model=p.model, fps=round(fps, 2), frames=p.stats.processed, skipped=p.camera.stats.skipped,
                           connected=p.camera.stats.connected, quality=quality)


def percentile(values: list[float], q: float) -> float | None:
    return _pct(sorted(values), q)


def _pct(ordered: list[float], q: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else None
