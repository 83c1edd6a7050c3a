"""One camera's loop: newest frame → engine (with failover) → post-processing → stats and results."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from fleet.topics import DEFAULT_MODEL
from runtimes.errors import RuntimesError
from runtimes.processing import Array, Transform
from runtimes.tasks import Answer as TaskAnswer
from runtimes.tasks import Outputs
from runtimes.tasks.compare import Run

from ..inference.engine import Engine, EngineClosed
from ..inference.shadow import Shadow
from .camera import Camera

log = logging.getLogger(__name__)


@dataclass
class Answer:
    camera: str
    result: TaskAnswer  # the task's answer (top-k, detections, coverage, output summaries)
    latency_ms: float
    frame: object | None = None  # the frame, for a snapshot or a low-confidence sample
    model: str = DEFAULT_MODEL  # the configured model name this camera is bound to


@dataclass
class PipelineStats:
    processed: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    # Since the last telemetry: its percentiles cover its interval, not the last 2,000 frames. Capped so a
    # device that sends no telemetry (no broker yet) does not grow it without end.
    window: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    # (when, latency) of the recent frames: an update compares its new model's p95 and fps with the previous
    # model's over the same kind of window.
    recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=5000))
    last_processed_at: float = 0.0

    def take_window(self) -> list[float]:
        """The latencies since the last call, and a fresh window (one reader: the telemetry tick)."""
        taken, self.window = self.window, deque(maxlen=100_000)
        return list(taken)

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pipeline:
    def __init__(self, camera: Camera, engine: Callable[[], Engine | None], on_answer: Callable[[Answer], None],
                 on_error: Callable[[str], None], model: str = DEFAULT_MODEL,
                 shadow: Callable[[], Shadow | None] = lambda: None) -> None:
        self.camera, self.model = camera, model
        self._engine = engine  # read every frame, so an update swaps the model between two frames
        self._shadow = shadow  # during an update's soak: the previous model, offered a sample of the frames
        self._on_answer, self._on_error = on_answer, on_error
        self.stats = PipelineStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{camera.id}", daemon=True)

    def start(self) -> Pipeline:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self.camera.get(timeout=0.5)
            engine = self._engine()
            if frame is None or engine is None:
                continue
            try:
                self.process(engine, frame)
            except EngineClosed:
                continue  # swapped by an update between two frames: the next frame takes the new engine
            except RuntimesError as exc:
                self.failed(exc)
                self._stop.wait(1.0)
            except Exception as exc:  # a bug must not silently stop the camera
                log.exception("camera %s: frame failed", self.camera.id)
                self.failed(exc)
                self._stop.wait(1.0)

    def process(self, engine: Engine, frame: Array) -> None:
        """One frame: inference with failover, post-processing, stats and the answer."""
        started = time.perf_counter()
        outputs, tf = engine.infer_frame(frame)
        answer = self.answer(engine, outputs, tf, frame)
        self.record(answer, (time.perf_counter() - started) * 1000)

    def failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        self._on_error(f"camera {self.camera.id}: {exc}")

    def record(self, answer: Answer, latency_ms: float) -> None:
        answer.latency_ms = latency_ms
        self.stats.processed += 1
        self.stats.latencies.append(latency_ms)
        self.stats.window.append(latency_ms)
        self.stats.last_processed_at = time.monotonic()
        self.stats.recent.append((self.stats.last_processed_at, latency_ms))
        shadow = self._shadow()
        if shadow is not None:
            shadow.served(latency_ms)
        self._on_answer(answer)

    def answer(self, engine: Engine, outputs: Outputs, tf: Transform, frame: Array) -> Answer:
        """Post-processing from the manifest, by the task the bundle declares."""
        model = engine.active.model
        result = model.post.decode(outputs, 0, model.size, tf, engine.labels)
        shadow = self._shadow()
        if shadow is not None:
            shadow.offer(frame, Run(model.post, outputs, model.size, result))
        return Answer(self.camera.id, result, 0.0, frame, self.model)
