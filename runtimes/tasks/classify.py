"""Classification: softmax (unless the model ends in one) and top-k over one output.

Agreement: top-1 on every image, top-1 on the images where FP32 is confident, reference-in-top-5, and the mean
KL divergence of the two distributions. The gate uses the confident top-1 and top-5: on ambiguous photos (two
dog breeds at 0.3 each) a flip of the top-1 says more about the photo than about quantisation."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..geometry import Array, Transform
from .base import Answer, Measure, Outputs, Size, TaskSpec, batch, label, resolve

CONFIDENT = 0.5  # FP32 top-1 minus top-2 probability at or above which an image counts as confident
MIN_CONFIDENT = 10  # fewer confident images than this: the confident measure falls back to all images


class ClassifyAnswer(Answer):
    top: list[tuple[str, float]]


class ClassifySpec(TaskSpec):
    kind: Literal["classify"] = "classify"
    output: str = ""
    top_k: Annotated[int, Field(gt=0)] = 5
    # False when the model already ends in a softmax.
    apply_softmax: bool = True

    measures: ClassVar[tuple[Measure, ...]] = (
        Measure("top1_confident", "top-1 agreement where FP32 is confident"), Measure("top5", "reference-in-top-5"),
        Measure("top1", "top-1 agreement"), Measure("kl", "mean KL divergence", higher_is_better=False))
    gates: ClassVar[dict[str, dict[str, float]]] = {
        "fp32": {"top1": 0.99}, "fp16": {"top1": 0.97, "top5": 0.99}, "bf16": {"top1": 0.95, "top5": 0.99},
        "int8": {"top1_confident": 0.90, "top5": 0.98}}
    golden: ClassVar[dict[str, dict[str, float]]] = {
        "fp32": {"top1": 1.0, "top5": 1.0}, "fp16": {"top1": 1.0, "top5": 1.0}, "bf16": {"top1": 0.85, "top5": 1.0},
        "int8": {"top1": 0.75, "top5": 0.85}}

    def output_names(self) -> list[str]:
        return [self.output]

    def with_outputs(self, names: list[str]) -> ClassifySpec:
        return self.model_copy(update={"output": resolve(self.output, names, "classify")})

    def probabilities(self, outputs: Outputs) -> Array:
        logits = batch(outputs, self.output)
        logits = logits.reshape(logits.shape[0], -1).astype(np.float32)
        if not self.apply_softmax:
            return logits
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs: Array = e / e.sum(axis=1, keepdims=True)
        return probs

    def decode(self, outputs: Outputs, index: int, size: Size, tf: Transform, labels: list[str]) -> ClassifyAnswer:
        row = self.probabilities({self.output: batch(outputs, self.output)[index : index + 1]})[0]
        ids = np.argsort(-row)[: self.top_k]
        return ClassifyAnswer(top=[(label(labels, int(i)), round(float(row[i]), 4)) for i in ids])

    def agreement(self, reference: Outputs, candidate: Outputs, size: Size) -> dict[str, float]:
        ref, cand = self.probabilities(reference), self.probabilities(candidate)
        ref_top1, cand_top1 = ref.argmax(axis=1), cand.argmax(axis=1)
        same = ref_top1 == cand_top1
        top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.concatenate([ref, 0 * ref], axis=1)
        confident = (top2[:, -1] - top2[:, 0]) >= CONFIDENT
        in_top5 = (np.argsort(-cand, axis=1)[:, :5] == ref_top1[:, None]).any(axis=1)
        return {"top1_confident": float(same[confident].mean() if confident.sum() >= MIN_CONFIDENT else same.mean()),
                "top5": float(in_top5.mean()), "top1": float(same.mean()), "kl": _kl(ref, cand)}

    def margin(self, reference: Outputs, size: Size) -> Array:
        """Top-1 − top-2 probability."""
        top2 = np.sort(self.probabilities(reference), axis=1)[:, -2:]
        out: Array = top2[:, 1] - top2[:, 0]
        return out


def _kl(p: Array, q: Array) -> float:
    """Mean KL(p‖q) over images; for scores that are not probabilities, of their normalised magnitudes."""
    p = np.clip(np.abs(p), 1e-8, None)
    q = np.clip(np.abs(q), 1e-8, None)
    p, q = p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)
    return float(np.mean(np.sum(p * np.log(p / q), axis=1)))
