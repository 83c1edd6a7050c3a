"""Cameras that share a model, served by one thread. Where the selected artifact takes a dynamic batch
and measurably gains from it on this device, their newest frames go in one call; otherwise one call each.
The engine runs one inference at a time anyway, so one thread per group loses no throughput."""

from __future__ import annotations

import logging
import statistics
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from runtimes.errors import RuntimesError
from runtimes.processing import Array, resize_frame

from ..inference.engine import Engine, EngineClosed, Slot
from .capture import Frame
from .pipeline import Pipeline

log = logging.getLogger(__name__)
MIN_GAIN = 1.10  # below this a batch is noise, and it adds a frame's wait to every camera's latency
ROUNDS = 5


@dataclass(frozen=True)
class BatchDecision:
    cameras: list[str]
    batch: bool
    gain: float | None  # n single calls / one batched call; None when the artifact cannot batch
    target: str


def measure_gain(engine: Engine, images: Array) -> float:
    """Median time of len(images) one-image calls over one call with all of them, interleaved."""
    engine.infer_images(images)
    engine.infer_images(images[:1])
    single, batched = [], []
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        for i in range(len(images)):
            engine.infer_images(images[i : i + 1])
        t1 = time.perf_counter()
        engine.infer_images(images)
        single.append(t1 - t0)
        batched.append(time.perf_counter() - t1)
    return statistics.median(single) / max(statistics.median(batched), 1e-9)


class Batcher:
    def __init__(self, pipelines: list[Pipeline], engine: Callable[[], Engine | None],
                 on_decision: Callable[[BatchDecision], None]) -> None:
        self.pipelines = pipelines
        self._engine, self._on_decision = engine, on_decision
        self._decided: tuple[weakref.ref[Slot], bool] | None = None  # (the slot it was measured on, batch?)
        self._stop = threading.Event()
        self._arrived = threading.Event()
        for p in pipelines:
            p.camera.arrivals.append(self._arrived)
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)

    def start(self) -> Batcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _gather(self) -> list[tuple[Pipeline, Frame]]:
        """The newest frame of every camera that is due one and has one, without waiting on any: a camera
        whose next frame is not there yet must not hold up the others (it did: 50 ms each, a quarter of
        every camera's 5/s schedule gone at four cameras)."""
        self._arrived.clear()
        got = [(p, p.take(timeout=0.0)) for p in self.pipelines if p.rate.wait(time.monotonic()) == 0]
        return [(p, f) for p, f in got if f is not None]

    def _due_in(self) -> float:
        now = time.monotonic()
        return min(p.rate.wait(now) for p in self.pipelines)

    def _run(self) -> None:
        while not self._stop.wait(self._due_in()):
            ready = self._gather()
            engine = self._engine()
            if not ready:
                self._arrived.wait(0.1)  # the next frame of any camera
                continue
            if engine is None:
                self._stop.wait(0.1)
                continue
            try:
                self._round(engine, ready)
            except EngineClosed:
                continue
            except RuntimesError as exc:
                for p, _ in ready:
                    p.failed(exc)
                self._stop.wait(1.0)
            except Exception as exc:  # a bug here must not silently stop every camera of the group
                log.exception("batcher round failed")
                self.pipelines[0].failed(exc)
                self._stop.wait(1.0)

    def _round(self, engine: Engine, ready: list[tuple[Pipeline, Frame]]) -> None:
        frames = [f.image for _, f in ready]
        if len(ready) > 1 and self._batch(engine, frames):
            started = time.perf_counter()
            results = engine.infer_frames(frames)
            answers = [p.answer(engine, outs, tf, f.image)
                       for (p, f), (outs, tf) in zip(ready, results, strict=True)]
            ms = (time.perf_counter() - started) * 1000
            for (p, f), answer in zip(ready, answers, strict=True):
                p.record(answer, ms, f.at, 1 / len(ready))
            return
        for p, frame in ready:
            p.process(engine, frame)

    def _batch(self, engine: Engine, frames: list[Array]) -> bool:
        """Measured once per engine (a model update or failover brings a new decision)."""
        if self._decided is not None and self._decided[0]() is engine.active:
            return self._decided[1]
        model = engine.active.model
        gain = None
        if model.batches:
            images = np.stack([resize_frame(f, model.pre)[0] for f in frames])
            gain = round(measure_gain(engine, images), 2)  # decided on the number the event reports
        batch = gain is not None and gain >= MIN_GAIN
        self._decided = (weakref.ref(engine.active), batch)
        self._on_decision(BatchDecision([p.camera.id for p in self.pipelines], batch, gain, engine.active.key))
        return batch
