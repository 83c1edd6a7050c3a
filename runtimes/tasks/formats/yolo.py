"""YOLO heads as Ultralytics and YOLOv5 export them: boxes (cx, cy, w, h) with class scores in one output.

`yolov8`: [1, 4+C, N] (Ultralytics' export; `layout = "rows"` for [1, N, 4+C]), class scores already sigmoid,
no objectness. `yolov5`: [1, N, 5+C], objectness at index 4, score = objectness × class score."""

from __future__ import annotations

from typing import Literal, TypeVar

import numpy as np

from ...geometry import Array
from ..base import Outputs, Size, batch, resolve
from ..detect import Candidates, DetectBase

_Y = TypeVar("_Y", bound="_Yolo")  # typing.Self is 3.11+, and the device side runs on 3.10


class _Yolo(DetectBase):
    output: str = ""
    # Box units: input pixels (Ultralytics), or normalised to [0, 1] (some exports, and INT8-friendly).
    box_units: Literal["pixels", "normalized"] = "pixels"

    def output_names(self) -> list[str]:
        return [self.output]

    def with_outputs(self: _Y, names: list[str]) -> _Y:
        return self.model_copy(update={"output": resolve(self.output, names, "detect")})

    def _rows(self, index: int, outputs: Outputs) -> Array:
        rows: Array = batch(outputs, self.output)[index].astype(np.float32, copy=False)
        return rows

    def _boxes(self, rows: Array, size: Size) -> Array:
        xywh = rows[:, :4].copy()
        if self.box_units == "normalized":
            xywh[:, [0, 2]] *= size[1]
            xywh[:, [1, 3]] *= size[0]
        half = xywh[:, 2:4] / 2
        out: Array = np.concatenate([xywh[:, :2] - half, xywh[:, :2] + half], axis=1)
        return out


class Yolov8Spec(_Yolo):
    format: Literal["yolov8"] = "yolov8"
    layout: Literal["channels_first", "rows"] = "channels_first"

    def candidates(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        rows = self._rows(index, outputs)
        if self.layout == "channels_first":
            rows = rows.T
        scores = rows[:, 4:]
        labels = scores.argmax(axis=1)
        return Candidates(self._boxes(rows, size), scores[np.arange(len(rows)), labels], labels)


class Yolov5Spec(_Yolo):
    format: Literal["yolov5"] = "yolov5"

    def candidates(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        rows = self._rows(index, outputs)
        classes = rows[:, 5:] if rows.shape[1] > 5 else np.ones((len(rows), 1), np.float32)
        labels = classes.argmax(axis=1)
        scores = rows[:, 4] * classes[np.arange(len(rows)), labels]
        return Candidates(self._boxes(rows, size), scores, labels)
