"""A fake runtime for unit tests of selection and failover, in addition to tests on the real runtimes.

Its "model" is a JSON file: logits = W · (per-channel mean of the input), W from a seed, plus optional
noise (to fail a golden check), latency and a failure after N calls.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import InferenceFailed, LoadFailed
from ..processing import Array
from .base import Adapter, HostTraits, Options, RuntimeInfo, Variant, parse_options


class FakeOptions(Options):
    latency_ms: float = 0.0
    fail_after: int | None = None
    hang_after: int | None = None
    hang_s: float = 5.0
    noise: float = 0.0


def fake_logits(images: Array, seed: int, classes: int) -> Array:
    """The fake model itself, also used to make the reference outputs of a fake bundle."""
    weights = np.random.default_rng(seed).normal(size=(3, classes)).astype(np.float32)
    axes = (2, 3) if images.shape[1] == 3 else (1, 2)
    means = images.astype(np.float32).mean(axis=axes)
    out: Array = means @ weights
    return out


class FakeAdapter(Adapter):
    runtime: ClassVar[str] = "fake"
    options_model: ClassVar[type[Options]] = FakeOptions

    def __init__(self) -> None:
        super().__init__()
        self._spec: dict[str, Any] = {}
        self._calls = 0
        self._opts = FakeOptions()

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        """Options from the artifact, so a test bundle can describe a slow, failing or stuck candidate."""
        return [Variant(d, dict(settings.get("options", {})), precision) for d in devices[:1]]

    @classmethod
    def probe(cls) -> RuntimeInfo:
        return RuntimeInfo("fake", "1.0", ["cpu"])

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        self._opts = parse_options(FakeOptions, self.runtime, options)
        self.options = self._opts
        try:
            self._spec = json.loads(files[0].read_text())
        except (OSError, ValueError) as exc:
            raise LoadFailed(f"fake: cannot read {files[0]}: {exc}") from exc

    def infer(self, inputs: list[Array]) -> list[Array]:
        opts = self._opts
        self._calls += 1
        if opts.fail_after is not None and self._calls > opts.fail_after:
            raise InferenceFailed(f"fake: failing after {opts.fail_after} calls")
        stuck = opts.hang_after is not None and self._calls > opts.hang_after
        delay = opts.latency_ms / 1000 + (opts.hang_s if stuck else 0.0)
        if delay:
            time.sleep(delay)  # stands in for compute (or a stuck driver); there is no event to wait on
        logits = fake_logits(inputs[0], int(self._spec["seed"]), int(self._spec["classes"]))
        if opts.noise:
            logits = logits + np.random.default_rng(self._calls).normal(scale=opts.noise, size=logits.shape)
        return [logits.astype(np.float32)]

    def executing(self) -> str:
        return "fake/cpu"
