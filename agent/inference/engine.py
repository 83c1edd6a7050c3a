"""Serving with failover: inference runs on the selected candidate; when it raises or stays stuck past
the timeout, the engine switches to the warm runner-up without restarting the process."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runtimes.errors import InferenceFailed, RuntimesError
from runtimes.manifest import TensorSpec
from runtimes.model import LoadedModel
from runtimes.processing import Array, Transform
from runtimes.tasks import Outputs

log = logging.getLogger(__name__)


class EngineClosed(Exception):
    """This engine was replaced (an update) or stopped; take the current one and try again."""


@dataclass(frozen=True)
class Failover:
    at: float
    from_key: str
    to_key: str | None
    reason: str
    load_s: float | None = None  # a lazy runner-up's load time, paid during this failover


@dataclass
class Slot:
    key: str
    model: LoadedModel


# A runner-up loaded only when the engine fails over to it (`runner_up = "lazy"`): its key, and its loader.
Pending = tuple[str, Callable[[], Slot]]


class Engine:
    def __init__(self, primary: Slot, runner_up: Slot | Pending | None, stuck_timeout_s: float = 5.0,
                 on_failover: Callable[[Failover], None] = lambda _: None, labels: list[str] | None = None) -> None:
        self.labels = labels or []
        self._slots = [primary] + ([runner_up] if isinstance(runner_up, Slot) else [])
        self._pending = runner_up if isinstance(runner_up, tuple) else None
        self._timeout = stuck_timeout_s
        self._on_failover = on_failover
        self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="infer")
        self.closed = False  # after close(): it takes no more work
        self._lock = threading.Lock()
        self.failovers: list[Failover] = []

    @property
    def active(self) -> Slot:
        return self._slots[0]

    def infer_frame(self, frame_bgr: Array) -> tuple[Outputs, Transform]:
        """Infer one camera frame on the active slot, failing over once per broken slot."""
        result: tuple[Outputs, Transform] = self._run(lambda m: m.infer_frame(frame_bgr))
        return result

    def infer_frames(self, frames: list[Array]) -> list[tuple[Outputs, Transform]]:
        """Several cameras' frames in one call on the active slot, with the same failover."""
        result: list[tuple[Outputs, Transform]] = self._run(lambda m: m.infer_frames(frames))
        return result

    def infer_images(self, images: Array) -> Outputs:
        """Infer model-size uint8 images (model colour order), with the same failover."""
        result: Outputs = self._run(lambda m: m.infer_images(images))
        return result

    def infer_tensor(self, tensor: Array, source: TensorSpec) -> Outputs:
        """The source graph's input tensor (the device API's tensor requests), with the same failover."""
        result: Outputs = self._run(lambda m: m.infer_tensor(tensor, source))
        return result

    def _run(self, call: Callable[[LoadedModel], Any]) -> Any:
        while True:
            slot = self.active
            try:
                future = self._pool.submit(call, slot.model)
            except RuntimeError as exc:  # submit after close
                raise EngineClosed() from exc
            try:
                return future.result(timeout=self._timeout)
            except cf.TimeoutError:
                self._fail(slot, f"inference stuck for more than {self._timeout:.1f} s", stuck=True)
            except RuntimesError as exc:
                self._fail(slot, str(exc), stuck=False)

    def _fail(self, slot: Slot, reason: str, stuck: bool) -> None:
        with self._lock:
            load_s = None
            if len(self._slots) < 2:  # the lazy runner-up, or an error when there is none
                started = time.monotonic()
                self._slots.append(self._load_pending(slot.key, reason))
                load_s = round(time.monotonic() - started, 3)
            if stuck:
                # The stuck call cannot be interrupted: abandon its thread and start a fresh one.
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = cf.ThreadPoolExecutor(1, thread_name_prefix="infer")
            else:
                slot.model.close()
            self._slots.pop(0)
            event = Failover(time.time(), slot.key, self.active.key, reason, load_s)
        self.failovers.append(event)
        log.warning("failover from %s to %s: %s", event.from_key, event.to_key, reason)
        self._on_failover(event)

    def _load_pending(self, failed: str, reason: str) -> Slot:
        """The lazy runner-up, loaded now: failover pays its load time instead of the device its memory."""
        if self._pending is None:
            raise InferenceFailed(f"{failed}: {reason}; no runner-up left")
        key, loader = self._pending
        self._pending = None
        try:
            return loader()
        except RuntimesError as exc:
            raise InferenceFailed(f"{failed}: {reason}; runner-up {key} did not load: {exc}") from exc

    def close(self) -> None:
        """Stop taking work, let an inference in flight finish, then free the runtimes. A runtime is never
        closed under a running inference (native runtimes crash on that); a stuck one is left to the OS."""
        with self._lock:
            pool = self._pool
        try:
            drained = pool.submit(lambda: None)
        except RuntimeError:
            return  # closed already
        pool.shutdown(wait=False)
        self.closed = True
        try:
            drained.result(timeout=self._timeout)
        except cf.TimeoutError:
            log.warning("inference still running at close: leaving its runtime to process exit")
            return
        for slot in self._slots:
            slot.model.close()
