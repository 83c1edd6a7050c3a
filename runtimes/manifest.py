"""The bundle manifest: the one place that says what a bundle holds and how to feed its artifacts.

Everything the device needs to run an artifact is declared here; nothing is guessed from file names.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .registry import formats
from .tasks import Postprocess

SCHEMA_VERSION: Literal[1] = 1

Layout = Literal["NCHW", "NHWC", "NC", "NLC"]
DType = Literal["float32", "float16", "uint8", "int8", "int32", "int64"]
Task = Literal["classify", "detect", "segment", "raw"]
ResizeMode = Literal["stretch", "letterbox", "center_crop"]
Precision = Literal["fp32", "fp16", "bf16", "int8"]


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
    # The source-graph output this tensor carries, where the artifact names it otherwise (converters rename and
    # reorder outputs): post-processing reads outputs by their source names.
    source: str | None = None
    # Axes permutation that brings this tensor into the source output's layout (onnx2tf makes 4-D outputs NHWC).
    perm: list[int] | None = None

    @property
    def key(self) -> str:
        return self.source or self.name


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
    """What an artifact must meet on the golden vectors, against the FP32 reference: a minimum per measure of
    the task (tasks/), and optionally a largest absolute difference of the outputs."""

    min: dict[str, Annotated[float, Field(ge=-1000, le=1000)]] = Field(default_factory=dict)
    max_abs: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _schema_1(cls, data: Any) -> Any:
        # Bundles built before tasks had top1_min/top5_min (the strict and the loose measure of the task).
        if isinstance(data, dict) and ("top1_min" in data or "top5_min" in data):
            data = dict(data)
            mins = {"top1": data.pop("top1_min", 1.0), "top5": data.pop("top5_min", 1.0)}
            data["min"] = {**mins, **data.get("min", {})}
        return data


LEGACY_FORMATS = {"onnxruntime": "onnx"}  # bundles before `format` named the runtime the file was for


def legacy_runtime(fmt: str) -> str:
    """What a bundle before `format` said in `runtime` for a file of this format."""
    return next((runtime for runtime, f in LEGACY_FORMATS.items() if f == fmt), fmt)


class Artifact(Strict):
    target: str  # the builder's target (builder/targets.py) that made it
    format: str  # the file format: which runtimes load it is the registry's business
    # The runtime the file was made for, as bundles before `format` said it; still written for their readers,
    # never read for a decision.
    runtime: str | None = None
    precision: Precision
    files: list[str]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    requires: Requirements = Field(default_factory=Requirements)
    # Runtime-specific build or load settings (e.g. the TensorRT recipe).
    settings: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _format_from_runtime(cls, data: Any) -> Any:
        if isinstance(data, dict) and "runtime" in data and "format" not in data:
            data = {**data, "format": LEGACY_FORMATS.get(data["runtime"], data["runtime"])}
        return data

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        known = formats()
        if value not in known:
            raise ValueError(f"unknown artifact format {value!r}; known: {', '.join(sorted(known))}")
        return value


class Golden(Strict):
    """Real inputs (uint8, model size) and the FP32 reference outputs; tolerances by precision. `reference` is
    an .npz with one array per name in `outputs` (in that order), or for bundles built before several outputs
    an .npy of the first output."""

    images: str
    reference: str
    count: int
    outputs: list[str] = Field(default_factory=list)
    tolerances: dict[str, Tolerance] = Field(default_factory=dict)


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

    @model_validator(mode="before")
    @classmethod
    def _schema_1(cls, data: Any) -> Any:
        """Bundles built before tasks: `softmax_topk` is classify; `detect` was YOLO-style rows."""
        if not isinstance(data, dict) or not isinstance(data.get("postprocess"), dict):
            return data
        post = dict(data["postprocess"])
        if post.get("kind") == "softmax_topk":
            post = {"kind": "classify", **{k: v for k, v in post.items() if k in ("top_k", "apply_softmax")}}
        elif post.get("kind") == "detect" and "format" not in post:
            keep = ("score_threshold", "iou_threshold", "max_detections", "box_units")
            post = {"kind": "detect", "format": "yolov8", "layout": "rows", **{k: post[k] for k in keep if k in post}}
            data = {**data, "golden": _box_tolerances(data.get("golden"))}
        else:
            return data
        first = _first_output(data)
        if first and post["kind"] in ("classify", "detect"):
            post["output"] = first
        golden = data.get("golden")
        if isinstance(golden, dict) and "outputs" not in golden and first:
            golden = {**golden, "outputs": [first]}
        return {**data, "postprocess": post, "golden": golden}

    def tolerance(self, precision: str) -> Tolerance:
        """The golden tolerance of an artifact of this precision: the bundle's, else the task's default."""
        own = self.golden.tolerances.get(precision)
        if own is not None and own.min:
            return own
        defaults = self.postprocess.golden
        return Tolerance(min=defaults.get(precision) or defaults["fp32"], max_abs=own.max_abs if own else None)

    @property
    def output_names(self) -> list[str]:
        """The model outputs post-processing reads."""
        return self.postprocess.output_names()

    def artifact(self, target: str) -> Artifact:
        for art in self.artifacts:
            if art.target == target:
                return art
        raise KeyError(target)


def _first_output(data: dict[str, Any]) -> str | None:
    try:
        name: str = data["artifacts"][0]["outputs"][0]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name


def _box_tolerances(golden: Any) -> Any:
    """Schema-1 detectors kept their matched-box minimum in top1_min."""
    if not isinstance(golden, dict) or not isinstance(golden.get("tolerances"), dict):
        return golden
    tols = {p: {"min": {"box_match": t.get("top1_min", 1.0)}, "max_abs": t.get("max_abs")}
            for p, t in golden["tolerances"].items() if isinstance(t, dict)}
    return {**golden, "tolerances": tols}
