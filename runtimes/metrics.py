"""Agreement between an artifact's outputs and the FP32 reference, used by the builder and the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .processing import Array, Detection, iou


@dataclass(frozen=True)
class Agreement:
    top1: float
    top5: float
    max_abs: float
    count: int

    def as_dict(self) -> dict[str, float]:
        return {"top1": round(self.top1, 4), "top5": round(self.top5, 4)}


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
    """Share of reference boxes matched by a candidate box of the same class with IoU ≥ threshold."""
    if not reference:
        return 1.0 if not candidate else 0.0
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
    return matched / len(reference)
