"""How the model is fed and read: flags, then a sidecar `<model>.edgectl.json`, then what the graph says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from runtimes.errors import RuntimesError, first_error
from runtimes.manifest import Preprocess
from runtimes.tasks import ClassifySpec, Postprocess, SegmentSpec, parse_postprocess

from .errors import ModelInputError
from .onnxinfo import OnnxInfo

# A model the builder has never seen gets ImageNet-style defaults; its sidecar or --preprocess says otherwise.
DEFAULT_PRE: dict[str, Any] = {"resize": "center_crop", "colour": "RGB",
                               "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375]}


def sidecar(model: Path) -> dict[str, Any]:
    path = model.with_name(model.stem + ".edgectl.json") if model.is_file() else model / "edgectl.json"
    if not path.is_file():
        return {}
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelInputError(f"{path}: not JSON ({exc})") from exc
    if "labels" in data and isinstance(data["labels"], str):
        data["labels"] = str(path.parent / data["labels"])
    return data


def input_shapes(side: dict[str, Any]) -> dict[str, list[int]]:
    """The sidecar's `input_shape` ({name: [dims]}), as --input-shape would give it."""
    raw = side.get("input_shape", {})
    if not isinstance(raw, dict) or not all(isinstance(v, list) and all(isinstance(d, int) for d in v)
                                            for v in raw.values()):
        raise ModelInputError("sidecar key 'input_shape': expected {\"NAME\": [D0, D1, …]}")
    return {str(k): list(v) for k, v in raw.items()}


def preprocess(info: OnnxInfo, side: dict[str, Any], flag: str | None) -> Preprocess:
    raw = {**DEFAULT_PRE, "height": info.height, "width": info.width, **side.get("preprocess", {})}
    if flag:
        raw.update(_json_or_file(flag, "--preprocess"))
    try:
        return Preprocess.model_validate(raw)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise ModelInputError(f"preprocess key {key!r}: {msg}") from exc


def postprocess(task: str | None, side: dict[str, Any], flag: str | None, info: OnnxInfo) -> Postprocess:
    """The post-processing spec: --postprocess, over the sidecar's `postprocess`, over --task (default classify);
    its outputs named against the graph's, and what the shapes tell (a segmenter's class axis) filled in."""
    raw: dict[str, Any] = {**side.get("postprocess", {}), **(_json_or_file(flag, "--postprocess") if flag else {})}
    kind = raw.get("kind") or side.get("task") or task or "classify"
    if task and raw.get("kind") and raw["kind"] != task:
        raise ModelInputError(f"--task {task} but --postprocess says kind {raw['kind']!r}")
    raw["kind"] = kind
    if kind == "detect" and "format" not in raw:
        raise ModelInputError("detect needs a format: --postprocess '{\"kind\": \"detect\", \"format\": …}' "
                              "with yolov8, yolov5, ssd_anchors or boxes (docs/build.md)")
    if kind == "segment" and "channels" not in raw:
        raw["channels"] = _channel_axis(info, raw.get("output") or info.outputs[0].name)
    try:
        return parse_postprocess(raw, "--postprocess").with_outputs([o.name for o in info.outputs])
    except RuntimesError as exc:
        raise ModelInputError(str(exc)) from exc


def _channel_axis(info: OnnxInfo, name: str) -> str:
    """[1, C, H, W] or [1, H, W, C]: the spatial dims follow the input's aspect."""
    out = next((o for o in info.outputs if o.name == name), None)
    if out is None or len(out.shape) != 4:
        return "first"
    h, w = info.height, info.width
    first = out.shape[2] > 0 and out.shape[3] > 0 and abs(out.shape[2] / out.shape[3] - h / w) < 1e-3
    last = out.shape[1] > 0 and out.shape[2] > 0 and abs(out.shape[1] / out.shape[2] - h / w) < 1e-3
    if last and not first:
        return "last"
    if first or out.shape[3] > 64:  # square outputs: a class axis of more than 64 is a spatial one
        return "first"
    return "last"


def class_count(post: Postprocess, info: OnnxInfo) -> int | None:
    """How many labels the model's output implies, where the task says (classify, segment)."""
    shapes = {o.name: o.shape for o in info.outputs}
    if isinstance(post, ClassifySpec):
        dims = shapes[post.output][1:]
        return int(np.prod(dims)) if dims and all(d > 0 for d in dims) else None
    if isinstance(post, SegmentSpec):
        dims = shapes[post.output]
        if len(dims) != 4:
            return None
        c = dims[1] if post.channels == "first" else dims[3]
        return c if c > 0 else None
    return None


def labels(path: Path | None, side: dict[str, Any], classes: int | None) -> list[str]:
    source = path or (Path(side["labels"]) if "labels" in side else None)
    if source is None:
        return [f"class_{i}" for i in range(classes or 0)]
    try:
        names = [line.strip() for line in source.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ModelInputError(f"{source}: cannot read labels ({exc.strerror})") from exc
    if classes and classes > 1 and len(names) != classes:
        raise ModelInputError(f"{source}: {len(names)} labels, but the model has {classes} outputs")
    return names


def _json_or_file(value: str, flag: str) -> dict[str, Any]:
    text = Path(value).read_text() if not value.lstrip().startswith("{") and Path(value).is_file() else value
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise ModelInputError(f"{flag}: neither JSON nor a JSON file ({exc})") from exc
    return data
