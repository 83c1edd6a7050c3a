"""Any outputs, passed through: for models the other tasks do not describe (landmarks, embeddings, OCR).

Answer: a summary per output (shape, min, max, mean, argmax and the first values), so a dashboard can follow
it; the full tensors stay on the device. Agreement per output, over the batch of images: cosine similarity
and the signal-to-noise ratio in dB; the measure of the whole is the worst output's."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..geometry import Array, Transform
from .base import Answer, Measure, Outputs, Size, TaskSpec, batch, resolve

HEAD = 8  # values of each output carried in a result


class OutputSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    shape: list[int]
    min: float
    max: float
    mean: float
    argmax: int
    head: list[float]


class RawAnswer(Answer):
    outputs: list[OutputSummary]


class RawSpec(TaskSpec):
    kind: Literal["raw"] = "raw"
    outputs: list[str] = Field(default_factory=list)  # empty: every output of the model

    measures: ClassVar[tuple[Measure, ...]] = (Measure("cosine", "cosine similarity (worst output)"),
                                               Measure("snr_db", "signal-to-noise ratio, dB (worst output)"))
    gates: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"cosine": 0.9999}, "fp16": {"cosine": 0.999},
                                                    "bf16": {"cosine": 0.995}, "int8": {"cosine": 0.98}}
    golden: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"cosine": 0.999}, "fp16": {"cosine": 0.995},
                                                     "bf16": {"cosine": 0.98}, "int8": {"cosine": 0.95}}

    def output_names(self) -> list[str]:
        return list(self.outputs)

    def with_outputs(self, names: list[str]) -> RawSpec:
        return self.model_copy(update={"outputs": [resolve(n, names, "raw") for n in self.outputs] or list(names)})

    def decode(self, outputs: Outputs, index: int, size: Size, tf: Transform, labels: list[str]) -> RawAnswer:
        return RawAnswer(outputs=[_summary(name, batch(outputs, name)[index]) for name in self.outputs])

    def agreement(self, reference: Outputs, candidate: Outputs, size: Size) -> dict[str, float]:
        cos, snr = [], []
        for name in self.outputs:
            ref = batch(reference, name).reshape(len(batch(reference, name)), -1).astype(np.float64)
            cand = batch(candidate, name).reshape(ref.shape).astype(np.float64)
            # Over the whole batch: a per-image cosine of a one-value output is only its sign.
            cos.append(_cosine(ref.reshape(-1), cand.reshape(-1)))
            snr.append(_snr_db(ref, cand))
        return {"cosine": min(cos), "snr_db": min(snr)}

    def margin(self, reference: Outputs, size: Size) -> Array:
        """No notion of a clear answer: every image counts the same (the first ones become golden)."""
        count = len(batch(reference, self.outputs[0]))
        out: Array = -np.arange(count, dtype=np.float32)
        return out


def _summary(name: str, x: Array) -> OutputSummary:
    flat = x.reshape(-1).astype(np.float64)
    return OutputSummary(name=name, shape=list(x.shape), min=float(flat.min()), max=float(flat.max()),
                         mean=round(float(flat.mean()), 6), argmax=int(flat.argmax()),
                         head=[round(float(v), 5) for v in flat[:HEAD]])


def _cosine(a: Array, b: Array) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 and nb == 0:
        return 1.0
    return float(np.dot(a, b) / max(na * nb, 1e-30))


def _snr_db(ref: Array, cand: Array) -> float:
    noise = float(np.sum((ref - cand) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0:
        return 100.0
    return round(float(10 * np.log10(max(signal, 1e-30) / noise)), 2)
