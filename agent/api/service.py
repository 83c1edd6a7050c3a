"""One model behind the API: requests wait in a bounded queue, are batched with each other and run on the engine
the cameras use (its selected candidate, its failover, an update's swap). A request in flight during a swap
is answered by the old engine or, when that one closed under it, by the new one: never failed for the swap."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from fleet.messages import ApiModelStats
from runtimes.errors import RuntimesError
from runtimes.manifest import Manifest, TensorSpec
from runtimes.processing import Array
from runtimes.signature import source_input
from runtimes.tasks import Answer, Outputs

from ..errors import ApiError, Busy, Late
from ..inference.engine import Engine, EngineClosed
from ..inference.serving import Serving
from .settings import ApiConfig

log = logging.getLogger(__name__)

Kind = Literal["images", "tensor"]
_SWAP_RETRIES = 3  # an engine closed under a request: the host's new one takes it (a swap, not a failure)


class Served(Protocol):
    """What the API asks of a model the agent hosts (`host.ModelHost`)."""

    @property
    def name(self) -> str: ...
    @property
    def serving(self) -> Serving | None: ...
    @property
    def pipelines(self) -> list[Any]: ...  # its cameras: while any runs, API calls take one image at a time


@dataclass
class Job:
    kind: Kind
    data: Any  # images: a list of BGR frames; tensor: the source input, batch first
    deadline: float
    future: cf.Future[Any] = field(default_factory=cf.Future)

    @property
    def size(self) -> int:
        return len(self.data)


class RequestStats:
    """Requests, rejections and latency of one model's API, for telemetry, status and /metrics."""

    def __init__(self, window: int = 2048) -> None:
        self._lock = threading.Lock()
        self.requests = self.rejected = self.failed = 0
        self._latency: deque[float] = deque(maxlen=window)
        self._times: deque[float] = deque(maxlen=window)

    def answered(self, seconds: float) -> None:
        with self._lock:
            self.requests += 1
            self._latency.append(seconds * 1000)
            self._times.append(time.monotonic())

    def refused(self, busy: bool) -> None:
        with self._lock:
            if busy:
                self.rejected += 1
            else:
                self.failed += 1

    def snapshot(self, over_s: float = 60.0) -> ApiModelStats:
        with self._lock:
            lat = sorted(self._latency)
            since = time.monotonic() - over_s
            recent = sum(1 for t in self._times if t >= since)
        pick = (lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2)) if lat else (lambda q: None)
        return ApiModelStats(requests=self.requests, rejected=self.rejected, failed=self.failed,
                             rate_per_s=round(recent / over_s, 2), p50_ms=pick(0.5), p95_ms=pick(0.95))


class ModelService:
    def __init__(self, host: Served, cfg: ApiConfig) -> None:
        self.host, self.cfg = host, cfg
        self.stats = RequestStats()
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=cfg.queue)
        self._held: Job | None = None  # taken while gathering a batch it did not fit: first of the next one
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"api-{host.name}", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.host.name

    def serving(self) -> Serving:
        current = self.host.serving
        if current is None:
            raise ApiError(503, f"model {self.name}: not serving yet (its selection is running)")
        return current

    def manifest(self) -> Manifest:
        return self.serving().bundle.manifest

    def source(self) -> TensorSpec:
        return source_input(self.manifest())

    def images(self, frames: list[Array]) -> list[Answer]:
        """Camera-like frames (BGR) → the task's answers, by the post-processing the cameras use."""
        answers: list[Answer] = self._submit("images", frames)
        return answers

    def tensor(self, tensor: Array) -> Outputs:
        """The source input (preprocessed, batch first) → the source outputs by name."""
        outputs: Outputs = self._submit("tensor", tensor)
        return outputs

    def _submit(self, kind: Kind, data: Any) -> Any:
        if len(data) > self.cfg.max_request_batch:
            self.stats.refused(busy=False)
            raise ApiError(413, f"model {self.name}: a batch of {len(data)} is more than max_request_batch "
                           f"({self.cfg.max_request_batch})")
        started = time.monotonic()
        job = Job(kind, data, started + self.cfg.deadline_ms / 1000)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.stats.refused(busy=True)
            raise Busy(self.name, self.cfg.queue) from None
        try:
            result = job.future.result(timeout=self.cfg.deadline_ms / 1000)
        except cf.TimeoutError:
            self.stats.refused(busy=True)
            raise Late(self.name, self.cfg.deadline_ms) from None
        except ApiError:
            self.stats.refused(busy=False)
            raise
        self.stats.answered(time.monotonic() - started)
        return result

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    # -- the worker: one batch at a time, so the cameras' calls interleave with the API's ----------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            first = self._held or self._take(0.2)
            self._held = None
            if first is None:
                continue
            batch = self._gather(first)
            live = [j for j in batch if not self._expired(j)]
            if live:
                self._run(live)

    def _take(self, timeout: float) -> Job | None:
        try:
            return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _gather(self, first: Job) -> list[Job]:
        """What queued behind `first` and fits its batch (same kind and shape), waiting at most max_delay_ms."""
        batch, size = [first], first.size
        until = time.monotonic() + self.cfg.max_delay_ms / 1000
        while size < self.cfg.max_batch:
            job = self._take(max(0.0, until - time.monotonic()))
            if job is None:
                break
            if not _fits(first, job) or size + job.size > self.cfg.max_batch:
                self._held = job
                break
            batch.append(job)
            size += job.size
        return batch

    def _expired(self, job: Job) -> bool:
        if time.monotonic() < job.deadline:
            return False
        job.future.set_exception(Late(self.name, self.cfg.deadline_ms))
        return True

    def _run(self, jobs: list[Job]) -> None:
        try:
            results = self._on_engine(lambda engine: _RUNNERS[jobs[0].kind](self, engine, jobs))
        except ApiError as exc:
            results = [exc] * len(jobs)
        except RuntimesError as exc:
            results = [ApiError(500, f"model {self.name}: inference failed: {exc}")] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            if isinstance(result, ApiError):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _on_engine(self, call: Callable[[Engine], list[Any]]) -> list[Any]:
        for _ in range(_SWAP_RETRIES):
            try:
                return call(self.serving().engine)
            except EngineClosed:
                continue  # swapped under us: the host already serves the new engine
        raise ApiError(503, f"model {self.name}: the serving engine changed {_SWAP_RETRIES} times; try again")


def _fits(first: Job, job: Job) -> bool:
    if first.kind != job.kind:
        return False
    return first.kind == "images" or first.data.shape[1:] == job.data.shape[1:]


def _one_at_a_time(service: ModelService, engine: Engine) -> bool:
    """One image per runtime call while a camera shares the engine (a camera's frame then waits behind one
    image, not a batch: measured, a batch of 8 raised a camera's p95 6x), or when the artifact takes one."""
    return bool(service.host.pipelines) or not engine.active.model.batches


def _run_images(service: ModelService, engine: Engine, jobs: list[Job]) -> list[Any]:
    frames = [f for job in jobs for f in job.data]
    model = engine.active.model
    single = _one_at_a_time(service, engine)
    pairs = [p for f in frames for p in engine.infer_frames([f])] if single else engine.infer_frames(frames)
    answers = [model.post.decode(out, 0, model.size, tf, engine.labels) for out, tf in pairs]
    return _split(answers, jobs)


def _run_tensor(service: ModelService, engine: Engine, jobs: list[Job]) -> list[Any]:
    tensor = np.concatenate([job.data for job in jobs]) if len(jobs) > 1 else jobs[0].data
    if _one_at_a_time(service, engine):
        parts = [engine.infer_tensor(tensor[i : i + 1], service.source()) for i in range(len(tensor))]
        outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    else:
        outputs = engine.infer_tensor(tensor, service.source())
    out, start = [], 0
    for job in jobs:
        out.append({k: v[start : start + job.size] for k, v in outputs.items()})
        start += job.size
    return out


def _split(items: list[Any], jobs: list[Job]) -> list[Any]:
    out, start = [], 0
    for job in jobs:
        out.append(items[start : start + job.size])
        start += job.size
    return out


_RUNNERS: dict[Kind, Callable[[ModelService, Engine, list[Job]], list[Any]]] = {
    "images": _run_images, "tensor": _run_tensor}
