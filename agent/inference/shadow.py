"""The model an update replaces, kept running beside the new one during the soak (the shadow): on a sample of
the same live frames, within a CPU budget so the serving model keeps its fps, each sampled frame is compared by
the task's measure (runtimes.tasks.compare). A few frames where they disagree are kept as JPEGs for a person
to look at. The summary gates the update when the push asks for a minimum agreement."""

from __future__ import annotations

import logging
import queue
import statistics
import threading
import time
from collections import deque
from pathlib import Path

import cv2

from fleet.messages import ShadowSummary
from runtimes.errors import RuntimesError
from runtimes.geometry import Array
from runtimes.tasks.compare import Run, agreement

from .engine import Engine, EngineClosed

log = logging.getLogger(__name__)
DISAGREE = 0.5  # a frame whose agreement is below this is a disagreement worth a sample


class Shadow:
    def __init__(self, engine: Engine, budget: float, samples_dir: Path | None = None, max_samples: int = 3) -> None:
        self._engine, self._budget = engine, budget
        self._samples_dir, self._max_samples = samples_dir, max_samples
        self._slot: queue.Queue[tuple[Array, Run]] = queue.Queue(maxsize=1)
        self._next = 0.0  # monotonic time before which no frame is taken (the CPU budget)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._scores: list[float] = []
        self._shadow_ms: list[float] = []
        self._served_ms: deque[float] = deque(maxlen=2000)
        self._samples: list[str] = []
        self._errors = 0
        self._thread = threading.Thread(target=self._work, name="shadow", daemon=True)
        self._thread.start()

    def offer(self, frame: Array, served: Run) -> None:
        """From a camera thread, after the serving model answered: never blocks, most frames are skipped."""
        if self._stop.is_set() or time.monotonic() < self._next:
            return
        try:
            self._slot.put_nowait((frame, served))
        except queue.Full:
            return

    def served(self, latency_ms: float) -> None:
        """The serving (new) model's latency on a frame, for the comparison of the two."""
        self._served_ms.append(latency_ms)

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                frame, served = self._slot.get(timeout=0.25)
            except queue.Empty:
                continue
            self._compare(frame, served)

    def _compare(self, frame: Array, served: Run) -> None:
        started, cpu0 = time.perf_counter(), time.process_time()
        try:
            outputs, tf = self._engine.infer_frame(frame)
            model = self._engine.active.model
            answer = model.post.decode(outputs, 0, model.size, tf, self._engine.labels)
        except (EngineClosed, RuntimesError) as exc:
            self._errors += 1
            log.debug("shadow inference failed: %s", exc)
            return
        spent = time.perf_counter() - started
        # The cost is CPU, not wall time: a runtime's worker threads use several cores at once, and the serving
        # model slows meanwhile. The process's CPU over the call counts both (an overestimate, so the shadow
        # errs towards sampling less); then idle long enough that the shadow stays within `budget` of a core.
        cost = max(spent, time.process_time() - cpu0)
        self._next = time.monotonic() + cost / self._budget - spent
        score = agreement(Run(model.post, outputs, model.size, answer), served)
        with self._lock:
            self._shadow_ms.append(spent * 1000)
            if score is not None:
                self._scores.append(score)
        if score is not None and score < DISAGREE:
            self._sample(frame)

    def _sample(self, frame: Array) -> None:
        if self._samples_dir is None or len(self._samples) >= self._max_samples:
            return
        path = self._samples_dir / f"disagree-{len(self._samples) + 1}.jpg"
        try:
            self._samples_dir.mkdir(parents=True, exist_ok=True)
            ok = cv2.imwrite(str(path), frame, [cv2.IMWRITE_JPEG_QUALITY, 80])
        except (OSError, cv2.error) as exc:
            log.warning("shadow sample %s: %s", path, exc)
            return
        if ok:
            self._samples.append(str(path))

    def stop(self) -> ShadowSummary:
        """Stop sampling; the figures so far. The shadow's engine stays open: the caller closes or reuses it."""
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            scores, ms, served = list(self._scores), list(self._shadow_ms), list(self._served_ms)
        return ShadowSummary(frames=len(scores), agreement=round(statistics.fmean(scores), 4) if scores else None,
                             previous_p50_ms=round(statistics.median(ms), 2) if ms else None,
                             serving_p50_ms=round(statistics.median(served), 2) if served else None,
                             disagreeing=sum(1 for s in scores if s < DISAGREE), errors=self._errors,
                             samples=list(self._samples))
