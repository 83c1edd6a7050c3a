"""What an answer says about the model's certainty, whatever the task: the signals the agent's quality
telemetry counts (a confidence histogram, the class mix, the share of unsure frames and their drift).

Classify: the top-1 score and label. Detect: every box's score and label; the frame's confidence is its
surest box (a frame without a box says nothing about certainty: empty scenes are normal). Segment and raw
answers carry no calibrated score: only segment's classes present in the frame count."""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Answer
from .classify import ClassifyAnswer
from .detect import DetectAnswer
from .segment import SegmentAnswer


@dataclass(frozen=True)
class Signals:
    confidence: float | None  # the frame's: None when the answer says nothing about certainty
    scores: list[float] = field(default_factory=list)  # every score, for the histogram
    classes: list[str] = field(default_factory=list)  # the labels answered in this frame


def signals(answer: Answer) -> Signals:
    if isinstance(answer, ClassifyAnswer):
        if not answer.top:
            return Signals(None)
        label, score = answer.top[0]
        return Signals(score, [score], [label])
    if isinstance(answer, DetectAnswer):
        scores = [d.score for d in answer.detections]
        return Signals(max(scores) if scores else None, scores, [d.label for d in answer.detections])
    if isinstance(answer, SegmentAnswer):
        return Signals(None, [], [label for label, share in answer.coverage.items() if share > 0])
    return Signals(None)
