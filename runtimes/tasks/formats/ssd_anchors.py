"""SSD models whose outputs are raw box regressors and class scores, decoded against generated anchors, as
MediaPipe's detectors ship (BlazeFace, palm, pose). The options carry MediaPipe's own field names, so a user
pastes them from the graph's `.pbtxt`: `anchors` is SsdAnchorsCalculatorOptions, `decode` is
TensorsToDetectionsCalculatorOptions. The decoder runs here, on the model's outputs: the graph stays the user's."""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...errors import ProcessingError
from ...geometry import Array
from ..base import Outputs, Size, batch, resolve
from ..detect import Candidates, DetectBase


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SsdAnchorsOptions(_Options):
    num_layers: Annotated[int, Field(gt=0)]
    min_scale: float
    max_scale: float
    input_size_height: Annotated[int, Field(gt=0)]
    input_size_width: Annotated[int, Field(gt=0)]
    anchor_offset_x: float = 0.5
    anchor_offset_y: float = 0.5
    feature_map_width: list[int] = Field(default_factory=list)
    feature_map_height: list[int] = Field(default_factory=list)
    strides: list[int] = Field(default_factory=list)
    aspect_ratios: list[float] = Field(default_factory=list)
    reduce_boxes_in_lowest_layer: bool = False
    interpolated_scale_aspect_ratio: float = 1.0
    fixed_anchor_size: bool = False


class TensorsToDetectionsOptions(_Options):
    num_classes: Annotated[int, Field(gt=0)]
    num_boxes: Annotated[int, Field(gt=0)]
    num_coords: Annotated[int, Field(ge=4)]
    box_coord_offset: int = 0
    keypoint_coord_offset: int = 0
    num_keypoints: int = 0
    num_values_per_keypoint: int = 2
    sigmoid_score: bool = False
    score_clipping_thresh: float | None = None
    reverse_output_order: bool = False  # True: x before y (x_center, y_center, w, h)
    x_scale: float = 0.0
    y_scale: float = 0.0
    w_scale: float = 0.0
    h_scale: float = 0.0
    apply_exponential_on_box_size: bool = False
    min_score_thresh: float | None = None


class SsdAnchorsSpec(DetectBase):
    format: Literal["ssd_anchors"] = "ssd_anchors"
    boxes: str = ""  # raw regressors [1, num_boxes, num_coords]
    scores: str = ""  # raw class scores [1, num_boxes, num_classes]
    anchors: SsdAnchorsOptions
    decode_options: TensorsToDetectionsOptions = Field(alias="decode")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True)

    @model_validator(mode="before")
    @classmethod
    def _threshold(cls, data: Any) -> Any:
        """MediaPipe's min_score_thresh is the score threshold unless one is given."""
        if isinstance(data, dict) and "score_threshold" not in data:
            decode = data.get("decode") or data.get("decode_options") or {}
            if isinstance(decode, dict) and decode.get("min_score_thresh") is not None:
                return {**data, "score_threshold": decode["min_score_thresh"]}
        return data

    def output_names(self) -> list[str]:
        return [self.boxes, self.scores]

    def with_outputs(self, names: list[str]) -> SsdAnchorsSpec:
        if not (self.boxes and self.scores):
            raise ProcessingError(f"detect/ssd_anchors: name the 'boxes' (regressors) and 'scores' outputs "
                                  f"(outputs: {', '.join(names)})")
        return self.model_copy(update={"boxes": resolve(self.boxes, names, "detect/ssd_anchors boxes"),
                                       "scores": resolve(self.scores, names, "detect/ssd_anchors scores")})

    def candidates(self, outputs: Outputs, index: int, size: Size) -> Candidates:
        d = self.decode_options
        raw = batch(outputs, self.boxes)[index].reshape(-1, d.num_coords).astype(np.float32)
        logits = batch(outputs, self.scores)[index].reshape(len(raw), -1).astype(np.float32)
        anchors = generate(self.anchors)
        if len(anchors) != len(raw):
            raise ProcessingError(f"ssd_anchors: {len(anchors)} anchors from the options, but output "
                                  f"{self.boxes!r} has {len(raw)} boxes")
        scores = _scores(logits, d)
        labels = scores.argmax(axis=1)
        boxes, keypoints = _decode(raw, anchors, d)
        scale = np.asarray([size[1], size[0]], dtype=np.float32)
        return Candidates((boxes.reshape(-1, 2, 2) * scale).reshape(-1, 4), scores[np.arange(len(raw)), labels],
                          labels, keypoints * scale if keypoints is not None else None)


def _scores(logits: Array, d: TensorsToDetectionsOptions) -> Array:
    if d.sigmoid_score:
        if d.score_clipping_thresh is not None:
            logits = np.clip(logits, -d.score_clipping_thresh, d.score_clipping_thresh)
        logits = 0.5 * (1.0 + np.tanh(0.5 * logits))  # the sigmoid, without overflow
    return logits


def _decode(raw: Array, anchors: Array, d: TensorsToDetectionsOptions) -> tuple[Array, Array | None]:
    """MediaPipe's DecodeBoxes: normalised x1,y1,x2,y2 and keypoints (N×K×2)."""
    ax, ay, aw, ah = anchors.T
    o = d.box_coord_offset
    first, second = (0, 1) if d.reverse_output_order else (1, 0)  # which column holds x, which y
    x = raw[:, o + first] / (d.x_scale or 1) * aw + ax
    y = raw[:, o + second] / (d.y_scale or 1) * ah + ay
    w, h = raw[:, o + 2 + first] / (d.w_scale or 1), raw[:, o + 2 + second] / (d.h_scale or 1)
    w, h = (np.exp(w), np.exp(h)) if d.apply_exponential_on_box_size else (w, h)
    w, h = w * aw, h * ah
    boxes = np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=1)
    if not d.num_keypoints:
        return boxes, None
    start = d.keypoint_coord_offset
    cols = raw[:, start : start + d.num_keypoints * d.num_values_per_keypoint]
    kp = cols.reshape(len(raw), d.num_keypoints, d.num_values_per_keypoint)[:, :, :2]
    kx = kp[:, :, first] / (d.x_scale or 1) * aw[:, None] + ax[:, None]
    ky = kp[:, :, second] / (d.y_scale or 1) * ah[:, None] + ay[:, None]
    return boxes, np.stack([kx, ky], axis=2)


def _scale(min_scale: float, max_scale: float, index: int, count: int) -> float:
    return (min_scale + max_scale) * 0.5 if count == 1 else min_scale + (max_scale - min_scale) * index / (count - 1)


def generate(o: SsdAnchorsOptions) -> Array:
    """MediaPipe's SsdAnchorsCalculator: anchors (x_center, y_center, w, h), normalised, in output order."""
    return _generate(o.model_dump_json())


@functools.lru_cache(maxsize=16)
def _generate(options: str) -> Array:
    o = SsdAnchorsOptions.model_validate_json(options)
    anchors: list[tuple[float, float, float, float]] = []
    layer = 0
    while layer < o.num_layers:
        ratios, scales = _layer_shapes(o, layer)
        last = layer
        while last < len(o.strides) and o.strides[last] == o.strides[layer]:
            last += 1
        fh, fw = _feature_map(o, layer)
        for y in range(fh):
            for x in range(fw):
                cx, cy = (x + o.anchor_offset_x) / fw, (y + o.anchor_offset_y) / fh
                for ratio, scale in zip(ratios, scales, strict=True):
                    w, h = (1.0, 1.0) if o.fixed_anchor_size else (scale * math.sqrt(ratio), scale / math.sqrt(ratio))
                    anchors.append((cx, cy, w, h))
        layer = max(last, layer + 1)
    return np.asarray(anchors, dtype=np.float32)


def _layer_shapes(o: SsdAnchorsOptions, layer: int) -> tuple[list[float], list[float]]:
    """Aspect ratios and scales of every anchor of a cell, layers with the same stride merged."""
    ratios: list[float] = []
    scales: list[float] = []
    i, count = layer, len(o.strides)
    while i < count and o.strides[i] == o.strides[layer]:
        scale = _scale(o.min_scale, o.max_scale, i, count)
        if i == 0 and o.reduce_boxes_in_lowest_layer:
            ratios += [1.0, 2.0, 0.5]
            scales += [0.1, scale, scale]
        else:
            ratios += list(o.aspect_ratios)
            scales += [scale] * len(o.aspect_ratios)
            if o.interpolated_scale_aspect_ratio > 0:
                following = 1.0 if i == count - 1 else _scale(o.min_scale, o.max_scale, i + 1, count)
                scales.append(math.sqrt(scale * following))
                ratios.append(o.interpolated_scale_aspect_ratio)
        i += 1
    return ratios, scales


def _feature_map(o: SsdAnchorsOptions, layer: int) -> tuple[int, int]:
    if o.feature_map_height:
        return o.feature_map_height[layer], o.feature_map_width[layer]
    stride = o.strides[layer]
    return math.ceil(o.input_size_height / stride), math.ceil(o.input_size_width / stride)
