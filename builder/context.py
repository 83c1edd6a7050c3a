"""What every target function gets: the source graph, the preprocessing and the calibration set."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtimes.manifest import Preprocess, Requirements, TensorSpec
from runtimes.processing import Array, to_input
from runtimes.tasks import Outputs

from .onnxinfo import OnnxInfo, make_static


@dataclass(frozen=True)
class Judge:
    """How accuracy recovery scores a candidate: the task's first measure of its outputs on the validation
    images against FP32, and the largest drop the gate allows."""

    inputs: Array  # the validation images as float inputs of the source graph
    score: Callable[[Outputs], float]
    max_drop: float


@dataclass
class BuildContext:
    source: Path
    info: OnnxInfo
    pre: Preprocess
    calib: Array  # uint8 NxHxWx3
    workdir: Path
    progress: Callable[[str], None]
    _static: Path | None = None
    # What a target's recovery measured once and reuses across attempts (e.g. the ranked nodes).
    memo: dict[str, list[str]] = field(default_factory=dict)
    judge: Judge | None = None
    # When the target being recovered must stop (time.monotonic()); a recovery that cannot stop between
    # attempts (NNCF's accuracy control is one long call) reads it.
    recovery_deadline: float = math.inf

    def calib_tensors(self, spec: TensorSpec | None = None) -> Array:
        """The calibration set as float inputs in the source graph's layout."""
        return to_input(self.calib, self.pre, spec or self.info.input.model_copy(update={"dtype": "float32"}))

    def reference(self, count: int) -> tuple[Array, Outputs]:
        """The first `count` calibration images and the source graph's outputs on them."""
        from . import onnxrun

        images = self.calib[:count]
        return images, onnxrun.run(self.source, self.calib_tensors()[:count])

    def static_onnx(self) -> Path:
        if self._static is None:
            self._static = make_static(self.source, self.workdir / "static.onnx", self.info)
        return self._static


@dataclass
class TargetOutput:
    """A built artifact: files relative to the bundle root, and how to feed it."""

    files: list[str]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    requires: Requirements = field(default_factory=Requirements)
    settings: dict[str, Any] = field(default_factory=dict)
    kept_float: list[str] = field(default_factory=list)  # layers accuracy recovery left unquantised
