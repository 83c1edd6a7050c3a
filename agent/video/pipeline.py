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
from .capture import Frame

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
    # Glass to result (ms): from when the frame left the camera to its answer handed to the messenger.
    glass: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))
    # The serving thread's time on this camera's answers (inference, post-processing, handing them on): one
    # thread serves every camera of a model, so this is what bounds how many it carries.
    busy_s: float = 0.0

    def take_window(self) -> list[float]:
        """The latencies since the last call, and a fresh window (one reader: the telemetry tick)."""
        taken, self.window = self.window, deque(maxlen=100_000)
        return list(taken)

    def take_glass(self) -> list[float]:
        taken, self.glass = self.glass, deque(maxlen=100_000)
        return list(taken)

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Rate:
    """A camera's inference rate: frames are taken on a schedule (None: whenever the model is free). Between
    two, the camera keeps decoding and the frames nobody took count as skipped."""

    def __init__(self, fps: float | None) -> None:
        self.interval = 1.0 / fps if fps else 0.0
        self.next_at = 0.0

    def wait(self, now: float) -> float:
        return max(0.0, self.next_at - now) if self.interval else 0.0

    def took(self, now: float) -> None:
        if self.interval:  # on schedule; after a slow stretch, one interval from now rather than a burst
            due = self.next_at + self.interval
            self.next_at = due if due > now else now + self.interval


class Pipeline:
    def __init__(self, camera: Camera, engine: Callable[[], Engine | None], on_answer: Callable[[Answer], None],
                 on_error: Callable[[str], None], model: str = DEFAULT_MODEL,
                 shadow: Callable[[], Shadow | None] = lambda: None, infer_fps: float | None = None) -> None:
        self.camera, self.model = camera, model
        self.rate = Rate(infer_fps)
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

    def take(self, timeout: float) -> Frame | None:
        """The camera's newest frame when this camera is due one."""
        frame = self.camera.get(timeout)
        if frame is not None:
            self.rate.took(time.monotonic())
        return frame

    def _run(self) -> None:
        while not self._stop.wait(self.rate.wait(time.monotonic())):
            frame = self.take(timeout=0.5)
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

    def process(self, engine: Engine, frame: Frame) -> None:
        """One frame: inference with failover, post-processing, stats and the answer."""
        started = time.perf_counter()
        outputs, tf = engine.infer_frame(frame.image)
        answer = self.answer(engine, outputs, tf, frame.image)
        self.record(answer, (time.perf_counter() - started) * 1000, frame.at)

    def failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        self._on_error(f"camera {self.camera.id}: {exc}")

    def record(self, answer: Answer, latency_ms: float, captured_at: float, share: float = 1.0) -> None:
        """`share`: this answer's part of the call that made it (1 / the batch)."""
        answer.latency_ms = latency_ms
        self.stats.processed += 1
        self.stats.latencies.append(latency_ms)
        self.stats.window.append(latency_ms)
        self.stats.last_processed_at = time.monotonic()
        self.stats.recent.append((self.stats.last_processed_at, latency_ms))
        shadow = self._shadow()
        if shadow is not None:
            shadow.served(latency_ms)
        handed = time.monotonic()
        self._on_answer(answer)
        done = time.monotonic()
        self.stats.glass.append((done - captured_at) * 1000)
        self.stats.busy_s += latency_ms / 1000 * share + (done - handed)

    def answer(self, engine: Engine, outputs: Outputs, tf: Transform, frame: Array) -> Answer:
        """Post-processing from the manifest, by the task the bundle declares."""
        model = engine.active.model
        result = model.post.decode(outputs, 0, model.size, tf, engine.labels)
        shadow = self._shadow()
        if shadow is not None:
            shadow.offer(frame, Run(model.post, outputs, model.size, result))
        return Answer(self.camera.id, result, 0.0, frame, self.model)
