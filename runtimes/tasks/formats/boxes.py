"""Models that already output boxes: `boxes` [1, N, 4], `scores` [1, N] or [1, N, C], optionally `classes`
[1, N] and `count` [1] (TensorFlow's detection API, torchvision-style exports, models with NMS inside)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...errors import ProcessingError
from ...geometry import Array
from ..base import Outputs, Size, batch, resolve
from ..detect import Candidates, DetectBase


class BoxesSpec(DetectBase):
    format: Literal["boxes"] = "boxes"
    boxes: str = ""
    scores: str = ""
    classes: str = ""  # "" with [1, N, C] scores: the best class; with [1, N] scores: class 0
    count: str = ""  # valid rows per image, where the model pads to a fixed N
    box_format: Literal["xyxy", "yxyx", "xywh", "cxcywh"] = "yxyx"
    box_units: Literal["pixels", "normalized"] = "normalized"
    label_offset: int = 0  # added to class ids (TF's detection API counts from 1 with labels from 0: -1)

    def output_names(self) -> list[str]:
        return [n for n in (self.boxes, self.scores, self.classes, self.count) if n]

    def with_outputs(self, names: list[str]) -> BoxesSpec:
        for key in ("boxes", "scores"):
            if not getattr(self, key):
                raise ProcessingError(f"detect/boxes: name the {key} output (outputs: {', '.join(names)})")
        return self.model_copy(update={k: resolve(getattr(self, k), names, f"detect/boxes {k}")
                                       for k in ("boxes", "scores", "classes", "count") if getattr(self, k)})

    def candidates(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        raw = batch(outputs, self.boxes)[index].reshape(-1, 4).astype(np.float32)
        scores = batch(outputs, self.scores)[index].astype(np.float32)
        scores = scores.reshape(len(raw), -1)
        if self.classes:
            labels = batch(outputs, self.classes)[index].reshape(-1).astype(np.int64)
            best = scores[:, 0]
        else:
            labels = scores.argmax(axis=1)
            best = scores[np.arange(len(raw)), labels]
        found = Candidates(self._xyxy(raw, size), best, labels + self.label_offset)
        if self.count:
            n = int(batch(outputs, self.count)[index].reshape(-1)[0])
            found = found.take(np.arange(min(max(n, 0), len(raw))))
        return found

    def _xyxy(self, raw: Array, size: Size) -> Array:
        a, b, c, d = raw.T
        x1, y1, x2, y2 = {"xyxy": (a, b, c, d), "yxyx": (b, a, d, c), "xywh": (a, b, a + c, b + d),
                          "cxcywh": (a - c / 2, b - d / 2, a + c / 2, b + d / 2)}[self.box_format]
        out: Array = np.stack([x1, y1, x2, y2], axis=1)
        if self.box_units == "normalized":
            out *= [size[1], size[0], size[1], size[0]]
        return out
