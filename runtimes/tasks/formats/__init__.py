"""The detection output formats: one module each; the union below is the table (one line per format)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .boxes import BoxesSpec
from .ssd_anchors import SsdAnchorsOptions, SsdAnchorsSpec, TensorsToDetectionsOptions, generate
from .yolo import Yolov5Spec, Yolov8Spec

DetectSpec = Annotated[
    Yolov8Spec | Yolov5Spec | SsdAnchorsSpec | BoxesSpec,
    Field(discriminator="format"),
]

__all__ = ["BoxesSpec", "DetectSpec", "SsdAnchorsOptions", "SsdAnchorsSpec", "TensorsToDetectionsOptions",
           "Yolov5Spec", "Yolov8Spec", "generate"]
