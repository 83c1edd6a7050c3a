"""Agreement between an artifact's outputs and the FP32 reference, used by the builder and the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .manifest import Postprocess, Preprocess
from .processing import IDENTITY, Array, Detection, detections, iou, probabilities


@dataclass(frozen=True)
class Measure:
    key: str  # in report.json's "agreement"
    name: str  # in messages and the report


# The strict and the loose measure of each task, written once for the agreement, the gate and the report.
MEASURES: dict[str, tuple[Measure, Measure]] = {
    "classify": (Measure("top1", "top-1 agreement"), Measure("top5", "reference-in-top-5")),
    "detect": (Measure("boxes", "matched-box agreement (IoU 0.5)"),
               Measure("boxes_iou30", "matched-box agreement (IoU 0.3)")),
}


@dataclass(frozen=True)
class Agreement:
    """Two agreement measures with the FP32 reference, strict and loose, so one tolerance shape fits both
    tasks. Classifiers: top-1 agreement and reference-in-top-5. Detectors: matched boxes at IoU 0.5 and 0.3."""

    top1: float
    top5: float
    max_abs: float
    count: int
    kind: str = "classify"

    def as_dict(self) -> dict[str, float]:
        strict, loose = MEASURES[self.kind]
        return {strict.key: round(self.top1, 4), loose.key: round(self.top5, 4)}

    def names(self) -> tuple[str, str]:
        """How to call the strict and the loose measure in a message."""
        strict, loose = MEASURES[self.kind]
        return strict.name, loose.name


def agreement(post: Postprocess, pre: Preprocess, reference: Array, candidate: Array) -> Agreement:
    """Agreement of an artifact's first output with the FP32 reference's, for the manifest's task."""
    if post.kind == "detect":
        return detection_agreement(post, pre, reference, candidate)
    return classification_agreement(probabilities(reference, post), probabilities(candidate, post))


def detection_agreement(post: Postprocess, pre: Preprocess, reference: Array, candidate: Array) -> Agreement:
    ref = [detections(reference[i : i + 1], post, pre, IDENTITY) for i in range(len(reference))]
    cand = [detections(candidate[i : i + 1], post, pre, IDENTITY) for i in range(len(candidate))]
    strict = [box_agreement(r, c, 0.5) for r, c in zip(ref, cand, strict=True)]
    loose = [box_agreement(r, c, 0.3) for r, c in zip(ref, cand, strict=True)]
    return Agreement(top1=float(np.mean(strict)), top5=float(np.mean(loose)),
                     max_abs=float(np.abs(reference - candidate).max()), count=len(reference), kind="detect")


def classification_agreement(reference: Array, candidate: Array) -> Agreement:
    """Top-1 agreement, and how often the reference's top-1 is in the candidate's top-5 (probabilities)."""
    ref_top1 = reference.argmax(axis=1)
    cand_top1 = candidate.argmax(axis=1)
    cand_top5 = np.argsort(-candidate, axis=1)[:, :5]
    in_top5 = (cand_top5 == ref_top1[:, None]).any(axis=1)
    return Agreement(
        top1=float((ref_top1 == cand_top1).mean()),
        top5=float(in_top5.mean()),
        max_abs=float(np.abs(reference - candidate).max()),
        count=len(reference),
    )


def box_agreement(reference: list[Detection], candidate: list[Detection], threshold: float = 0.5) -> float:
    """Boxes matched one-to-one (same class, IoU ≥ threshold) over the larger of the two sets, so a
    missed box and an extra box both count against the candidate."""
    if not reference and not candidate:
        return 1.0
    unused = list(candidate)
    matched = 0
    for ref in reference:
        same = [c for c in unused if c.label == ref.label]
        if not same:
            continue
        overlaps = iou(np.asarray(ref.box), np.asarray([c.box for c in same]))
        best = int(overlaps.argmax())
        if overlaps[best] >= threshold:
            matched += 1
            unused.remove(same[best])
    return matched / max(len(reference), len(candidate))
