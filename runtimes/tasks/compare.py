"""Two models on the same live frame, compared by the task's measure: the agent's shadow comparison of a new
model with the one it replaces, during an update's soak.

Classify and detect are compared on what the models answer, in frame terms, so a retrained model whose
label order changed still compares right: the top-1 label, and boxes matched one-to-one by label and
IoU ≥ 0.5 (2 × matched / (boxes of both)). Segment and raw are compared on their outputs with the builder's
measure (mask IoU, cosine) when both models give outputs of the same names and shapes (a requantised or
retrained model of the same architecture); a segmenter of another shape is compared on the class shares of
the frame; raw outputs of another shape are not comparable (None)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import iou
from .base import Answer, Outputs, Size, TaskSpec
from .classify import ClassifyAnswer
from .detect import DetectAnswer, Detection
from .segment import SegmentAnswer

MATCH_IOU = 0.5


@dataclass(frozen=True)
class Run:
    """One model's pass over one frame: its spec, its outputs (batch of one) and its answer."""

    spec: TaskSpec
    outputs: Outputs
    size: Size
    answer: Answer


def agreement(reference: Run, candidate: Run) -> float | None:
    """In [0, 1], 1 when they agree; None when the two cannot be compared."""
    ref, cand = reference.answer, candidate.answer
    if isinstance(ref, ClassifyAnswer) and isinstance(cand, ClassifyAnswer):
        return _top1(ref, cand)
    if isinstance(ref, DetectAnswer) and isinstance(cand, DetectAnswer):
        return _boxes(ref.detections, cand.detections)
    if _same_outputs(reference.outputs, candidate.outputs) and type(reference.spec) is type(candidate.spec):
        value = candidate.spec.agreement(reference.outputs, candidate.outputs, candidate.size)
        return float(np.clip(value[candidate.spec.primary.key], 0.0, 1.0))
    if isinstance(ref, SegmentAnswer) and isinstance(cand, SegmentAnswer):
        return _shares(ref.coverage, cand.coverage)
    return None


def _top1(ref: ClassifyAnswer, cand: ClassifyAnswer) -> float:
    if not ref.top or not cand.top:
        return float(not ref.top and not cand.top)
    return float(ref.top[0][0] == cand.top[0][0])


def _boxes(ref: list[Detection], cand: list[Detection]) -> float:
    if not ref and not cand:
        return 1.0
    free = list(cand)
    matched = 0
    for r in sorted(ref, key=lambda d: -d.score):
        best = max(free, key=lambda c: _iou(r, c) if c.label == r.label else -1.0, default=None)
        if best is not None and best.label == r.label and _iou(r, best) >= MATCH_IOU:
            free.remove(best)
            matched += 1
    return 2.0 * matched / (len(ref) + len(cand))


def _iou(a: Detection, b: Detection) -> float:
    return float(iou(np.asarray(a.box, np.float32), np.asarray([b.box], np.float32))[0])


def _shares(ref: dict[str, float], cand: dict[str, float]) -> float:
    """1 − total variation distance between the two class-share distributions."""
    labels = set(ref) | set(cand)
    return max(0.0, 1.0 - 0.5 * sum(abs(ref.get(k, 0.0) - cand.get(k, 0.0)) for k in labels))


def _same_outputs(a: Outputs, b: Outputs) -> bool:
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)
