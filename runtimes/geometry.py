"""Boxes and the way back from model-input pixels to the camera frame. Pure numpy, no manifest: the tasks and
the pre-processing both use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Transform:
    """Maps model-input pixel coordinates back to the source frame: src = (xy - pad) / scale + offset."""

    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0
    offset_x: float = 0.0
    offset_y: float = 0.0

    def points(self, xy: Array) -> Array:
        """Nx2 model-input pixels → Nx2 frame pixels."""
        out: Array = (xy - [self.pad_x, self.pad_y]) / [self.scale_x, self.scale_y] + [self.offset_x, self.offset_y]
        return out


IDENTITY = Transform(1.0, 1.0)


def iou(box: Array, others: Array) -> Array:
    """IoU of one x1,y1,x2,y2 box with each row of others."""
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[2], others[:, 2])
    y2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    out: Array = inter / np.maximum(area + areas - inter, 1e-9)
    return out


def nms(boxes: Array, scores: Array, labels: Array, threshold: float) -> list[int]:
    """Greedy per-class non-maximum suppression; indices by descending score."""
    order = np.argsort(-scores, kind="stable")
    kept: list[int] = []
    while order.size:
        i = int(order[0])
        kept.append(i)
        rest = order[1:]
        if not rest.size:
            break
        overlap = iou(boxes[i], boxes[rest])
        order = rest[(overlap < threshold) | (labels[rest] != labels[i])]
    return kept
