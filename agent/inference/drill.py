"""A failure drill: the default model's serving runtime is made to fail on purpose after N inferences, so an
operator (and the proof suite) can watch failover happen on the real device, runtimes and process, instead
of trusting that it would. Off unless `[drill] after_calls` is set; armed once per process."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from runtimes.adapters.base import Adapter, Options, RuntimeInfo
from runtimes.errors import InferenceFailed, RuntimeUnavailable
from runtimes.processing import Array

from ..config import DrillConfig
from .engine import Engine


class DrillAdapter(Adapter):
    """Wraps the real adapter: its answers until the drill fires, then a runtime error or a stuck call."""

    runtime: ClassVar[str] = "drill"
    options_model: ClassVar[type[Options]] = Options

    def __init__(self, inner: Adapter, cfg: DrillConfig) -> None:
        super().__init__()
        self.inner, self.cfg = inner, cfg
        self.options = inner.options
        self._calls = 0
        self._never = threading.Event()

    @classmethod
    def probe(cls) -> RuntimeInfo:
        raise RuntimeUnavailable("drill", "a wrapper around a real runtime, not a runtime")

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        self.inner.load(files, options)

    def infer(self, inputs: list[Array]) -> list[Array]:
        self._calls += 1
        if self.cfg.after_calls is None or self._calls <= self.cfg.after_calls:
            return self.inner.infer(inputs)
        if self.cfg.mode == "hang":
            self._never.wait(self.cfg.hang_s)  # a stuck driver: the engine gives up on this call first
        raise InferenceFailed(f"drill: {self.inner.runtime} made to fail after {self.cfg.after_calls} inferences")

    def executing(self) -> str:
        return self.inner.executing()

    def close(self) -> None:
        self.inner.close()


def arm(engine: Engine, cfg: DrillConfig) -> str | None:
    """Wrap the engine's active runtime; the message for the event, or None when the drill is off."""
    if cfg.after_calls is None:
        return None
    slot = engine.active
    slot.model.adapter = DrillAdapter(slot.model.adapter, cfg)
    return f"failure drill armed: {slot.key} will {cfg.mode} after {cfg.after_calls} inferences"
