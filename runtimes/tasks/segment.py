"""Segmentation: per-pixel class scores [1, C, H, W] or [1, H, W, C], or one mask channel.

Answer: the share of the frame each class covers (one mask channel: the foreground label and "background").
Agreement: mean mask IoU over images (per class present in either map, then averaged), and pixel agreement."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field

from ..geometry import Array, Transform
from .base import Answer, Measure, Outputs, Size, TaskSpec, batch, label, resolve


class SegmentAnswer(Answer):
    coverage: dict[str, float]


class SegmentSpec(TaskSpec):
    kind: Literal["segment"] = "segment"
    output: str = ""
    # Where the class axis is: 1 ([1, C, H, W]) or the last ([1, H, W, C]); the builder reads it off the shapes.
    channels: Literal["first", "last"] = "first"
    activation: Literal["sigmoid", "softmax", "none"] = "none"
    # One mask channel: foreground where the (activated) score reaches this.
    threshold: Annotated[float, Field(ge=0, le=1)] = 0.5

    measures: ClassVar[tuple[Measure, ...]] = (Measure("mask_iou", "mean mask IoU"),
                                               Measure("pixel_agreement", "pixel agreement"))
    gates: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"mask_iou": 0.99}, "fp16": {"mask_iou": 0.97},
                                                    "bf16": {"mask_iou": 0.95}, "int8": {"mask_iou": 0.90}}
    golden: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"mask_iou": 0.99}, "fp16": {"mask_iou": 0.95},
                                                     "bf16": {"mask_iou": 0.90}, "int8": {"mask_iou": 0.80}}

    def output_names(self) -> list[str]:
        return [self.output]

    def with_outputs(self, names: list[str]) -> SegmentSpec:
        return self.model_copy(update={"output": resolve(self.output, names, "segment")})

    def scores(self, outputs: Outputs) -> Array:
        """N×C×H×W activated scores."""
        x: Array = batch(outputs, self.output).astype(np.float32)
        if x.ndim == 3:
            x = x[:, None]
        if self.channels == "last":
            x = x.transpose(0, 3, 1, 2)
        if self.activation == "sigmoid":
            x = 0.5 * (1.0 + np.tanh(0.5 * x))  # the sigmoid, without overflow
        elif self.activation == "softmax":
            e = np.exp(x - x.max(axis=1, keepdims=True))
            x = e / e.sum(axis=1, keepdims=True)
        return x

    def class_map(self, outputs: Outputs) -> Array:
        """N×H×W class ids (one channel: 1 = foreground)."""
        x = self.scores(outputs)
        out: Array = (x[:, 0] >= self.threshold).astype(np.int64) if x.shape[1] == 1 else x.argmax(axis=1)
        return out

    def decode(self, outputs: Outputs, index: int, size: Size, tf: Transform, labels: list[str]) -> SegmentAnswer:
        one = {self.output: batch(outputs, self.output)[index : index + 1]}
        classes = self.class_map(one)[0]
        ids, counts = np.unique(classes, return_counts=True)
        mask = self.one_channel(one)
        names = [("background" if i == 0 else label(labels, 0)) if mask else label(labels, int(i)) for i in ids]
        shares = {n: round(float(c) / classes.size, 4) for n, c in zip(names, counts, strict=True)}
        return SegmentAnswer(coverage=shares)

    def one_channel(self, outputs: Outputs) -> bool:
        x = batch(outputs, self.output)
        return x.ndim == 3 or x.shape[1 if self.channels == "first" else -1] == 1

    def agreement(self, reference: Outputs, candidate: Outputs, size: Size) -> dict[str, float]:
        ref, cand = self.class_map(reference), self.class_map(candidate)
        # One mask channel: the foreground's IoU (the background's would flatter every mask).
        skip = {0} if self.one_channel(reference) else set()
        ious = [_mean_iou(r, c, skip) for r, c in zip(ref, cand, strict=True)]
        return {"mask_iou": float(np.mean(ious)), "pixel_agreement": float((ref == cand).mean())}

    def margin(self, reference: Outputs, size: Size) -> Array:
        """Share of pixels far from a decision boundary: images quantisation will not flip much."""
        x = self.scores(reference)
        if x.shape[1] == 1:
            clear = np.abs(x[:, 0] - self.threshold) > 0.25
        else:
            top2 = np.sort(x, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 0.25 * np.abs(top2[:, 1]).max()
        out: Array = clear.reshape(len(x), -1).mean(axis=1)
        return out


def _mean_iou(ref: Array, cand: Array, skip: set[int]) -> float:
    classes = [c for c in np.union1d(np.unique(ref), np.unique(cand)) if int(c) not in skip]
    ious = []
    for c in classes:
        a, b = ref == c, cand == c
        union = np.logical_or(a, b).sum()
        ious.append(np.logical_and(a, b).sum() / union if union else 1.0)
    return float(np.mean(ious)) if ious else 1.0
