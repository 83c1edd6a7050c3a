"""Detection: each output format (tasks/formats/) turns its outputs into candidate boxes in model-input pixels;
thresholding, NMS, the way back to the frame and the agreement measure are written once here.

Agreement: boxes matched one-to-one (same class, IoU ≥ 0.5) over the larger of the two sets per image, so a
missed box and an extra box both count against the candidate; the mean over images."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..geometry import IDENTITY, Array, Transform, iou, nms
from .base import Answer, Measure, Outputs, Size, TaskSpec, label


@dataclass(frozen=True)
class Candidates:
    """One image's boxes before NMS: x1,y1,x2,y2 in model-input pixels, score, class, keypoints (N×K×2 or None)."""

    boxes: Array
    scores: Array
    labels: Array
    keypoints: Array | None = None

    def take(self, keep: Array) -> Candidates:
        return Candidates(self.boxes[keep], self.scores[keep], self.labels[keep],
                          None if self.keypoints is None else self.keypoints[keep])


class Detection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    score: float
    box: list[float]  # x1, y1, x2, y2 in frame pixels
    keypoints: list[list[float]] = Field(default_factory=list)  # x, y in frame pixels


class DetectAnswer(Answer):
    detections: list[Detection]


class DetectBase(TaskSpec):
    kind: Literal["detect"] = "detect"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.25
    iou_threshold: Annotated[float, Field(gt=0, le=1)] = 0.45
    max_detections: Annotated[int, Field(gt=0)] = 100

    measures: ClassVar[tuple[Measure, ...]] = (Measure("box_match", "matched-box agreement (IoU 0.5)"),
                                               Measure("box_match_iou30", "matched-box agreement (IoU 0.3)"))
    gates: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"box_match": 0.99}, "fp16": {"box_match": 0.97},
                                                    "bf16": {"box_match": 0.95}, "int8": {"box_match": 0.90}}
    golden: ClassVar[dict[str, dict[str, float]]] = {"fp32": {"box_match": 1.0}, "fp16": {"box_match": 0.95},
                                                     "bf16": {"box_match": 0.85}, "int8": {"box_match": 0.75}}

    @abc.abstractmethod
    def candidates(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        """Every box of image `index` with its best class score (no threshold yet)."""

    def detect(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        found = self.candidates(outputs, index, size)
        found = found.take(found.scores >= self.score_threshold)
        keep = nms(found.boxes, found.scores, found.labels, self.iou_threshold)[: self.max_detections]
        return found.take(np.asarray(keep, dtype=np.int64))

    def decode(self, outputs: Outputs, index: int, size: Size, tf: Transform, labels: list[str]) -> DetectAnswer:
        found = self.detect(outputs, index, size)
        dets = []
        for i in range(len(found.scores)):
            corners = tf.points(found.boxes[i].reshape(2, 2)).reshape(-1)
            points = [] if found.keypoints is None else tf.points(found.keypoints[i]).round(1).tolist()
            dets.append(Detection(label=label(labels, int(found.labels[i])), score=round(float(found.scores[i]), 4),
                                  box=[round(float(v), 1) for v in corners], keypoints=points))
        return DetectAnswer(detections=dets)

    def agreement(self, reference: Outputs, candidate: Outputs, size: Size) -> dict[str, float]:
        count = len(next(iter(reference.values())))
        pairs = [(self.detect(reference, i, size), self.detect(candidate, i, size)) for i in range(count)]
        return {"box_match": float(np.mean([box_agreement(r, c, 0.5) for r, c in pairs])),
                "box_match_iou30": float(np.mean([box_agreement(r, c, 0.3) for r, c in pairs]))}

    def margin(self, reference: Outputs, size: Size) -> Array:
        """How far the nearest score sits from the threshold (no box flips in or out under quantisation),
        images with at least one detection first."""
        count = len(next(iter(reference.values())))
        out = np.zeros(count, dtype=np.float32)
        for i in range(count):
            scores = self.candidates(reference, i, size).scores
            has_box = bool((scores >= self.score_threshold).any())
            out[i] = float(np.abs(scores - self.score_threshold).min()) + has_box if scores.size else 0.0
        return out


def box_agreement(reference: Candidates, candidate: Candidates, threshold: float = 0.5) -> float:
    if not len(reference.scores) and not len(candidate.scores):
        return 1.0
    unused = list(range(len(candidate.scores)))
    matched = 0
    for r in range(len(reference.scores)):
        same = [c for c in unused if candidate.labels[c] == reference.labels[r]]
        if not same:
            continue
        overlaps = iou(reference.boxes[r], candidate.boxes[same])
        best = int(overlaps.argmax())
        if overlaps[best] >= threshold:
            matched += 1
            unused.remove(same[best])
    return matched / max(len(reference.scores), len(candidate.scores))


__all__ = ["IDENTITY", "Candidates", "DetectAnswer", "DetectBase", "Detection", "box_agreement"]
