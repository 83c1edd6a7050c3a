"""The bundle manifest: the one place that says what a bundle holds and how to feed its artifacts.

Everything the device needs to run an artifact is declared here; nothing is guessed from file names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1

Layout = Literal["NCHW", "NHWC", "NC", "NLC"]
DType = Literal["float32", "float16", "uint8", "int8", "int32", "int64"]
Task = Literal["classify", "detect"]
ResizeMode = Literal["stretch", "letterbox", "center_crop"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]
Target = Literal["onnx-fp32", "onnx-int8", "openvino-fp16", "openvino-int8", "tflite-int8", "tensorrt"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Quantization(Strict):
    """Affine quantisation of a tensor: real = (q - zero_point) * scale."""

    scale: float
    zero_point: int


class TensorSpec(Strict):
    name: str
    shape: list[int]
    dtype: DType = "float32"
    layout: Layout | None = None
    quant: Quantization | None = None


class Preprocess(Strict):
    """How a camera frame becomes the model's float input: x = (pixel - mean) / std, per channel."""

    height: Annotated[int, Field(gt=0)]
    width: Annotated[int, Field(gt=0)]
    resize: ResizeMode = "stretch"
    colour: Literal["RGB", "BGR"] = "RGB"
    mean: list[float] = Field(default_factory=lambda: [0.0, 0.0, 0.0])
    std: list[float] = Field(default_factory=lambda: [255.0, 255.0, 255.0])
    # Centre-crop keeps this fraction of the shorter side before resizing.
    crop_fraction: Annotated[float, Field(gt=0, le=1)] = 0.875


class Postprocess(Strict):
    kind: Literal["softmax_topk", "detect"]
    top_k: Annotated[int, Field(gt=0)] = 5
    # False when the model already ends in a softmax.
    apply_softmax: bool = True
    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_detections: int = 100
    # Detect rows (cx, cy, w, h) in model-input pixels, or normalised to [0, 1] (INT8-friendly: one output
    # tensor then holds boxes and scores on the same scale).
    box_units: Literal["pixels", "normalized"] = "pixels"


class FileEntry(Strict):
    path: str
    sha256: str
    size: int


class Requirements(Strict):
    """What a device must have to run an artifact."""

    packages: dict[str, str] = Field(default_factory=dict)
    cpu_flags: list[str] = Field(default_factory=list)
    gpu: bool = False


class Tolerance(Strict):
    """What an artifact must meet on the golden vectors, against the FP32 reference."""

    top1_min: Annotated[float, Field(ge=0, le=1)] = 1.0
    top5_min: Annotated[float, Field(ge=0, le=1)] = 1.0
    max_abs: float | None = None


class Artifact(Strict):
    target: Target
    runtime: Literal["onnxruntime", "openvino", "tflite", "tensorrt", "fake"]
    precision: Precision
    files: list[str]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    requires: Requirements = Field(default_factory=Requirements)
    # Runtime-specific build or load settings (e.g. the TensorRT recipe).
    settings: dict[str, Any] = Field(default_factory=dict)


def default_tolerances() -> dict[str, Tolerance]:
    """On golden images chosen for a clear FP32 answer, a sound artifact agrees almost always."""
    return {
        "fp32": Tolerance(top1_min=1.0, top5_min=1.0, max_abs=0.01),
        "fp16": Tolerance(top1_min=1.0, top5_min=1.0),
        "bf16": Tolerance(top1_min=0.85, top5_min=1.0),
        "int8": Tolerance(top1_min=0.75, top5_min=0.85),
    }


class Golden(Strict):
    """Real inputs (uint8, model size) and the FP32 reference outputs; tolerances by precision."""

    images: str
    reference: str
    count: int
    tolerances: dict[str, Tolerance] = Field(default_factory=default_tolerances)


class Source(Strict):
    filename: str
    sha256: str
    format: str


class Manifest(Strict):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    version: Annotated[int, Field(ge=0)]
    created: str
    source: Source
    task: Task
    labels: list[str]
    preprocess: Preprocess
    postprocess: Postprocess
    artifacts: list[Artifact]
    golden: Golden
    files: list[FileEntry]
    builder: dict[str, str] = Field(default_factory=dict)

    def artifact(self, target: str) -> Artifact:
        for art in self.artifacts:
            if art.target == target:
                return art
        raise KeyError(target)
