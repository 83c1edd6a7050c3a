"""How the model is fed and read: flags, then a sidecar `<model>.edgectl.json`, then what the graph says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from runtimes.errors import first_error
from runtimes.manifest import Postprocess, Preprocess

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


def preprocess(info: OnnxInfo, side: dict[str, Any], flag: str | None) -> Preprocess:
    raw = {**DEFAULT_PRE, "height": info.height, "width": info.width, **side.get("preprocess", {})}
    if flag:
        raw.update(_json_or_file(flag, "--preprocess"))
    try:
        return Preprocess.model_validate(raw)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise ModelInputError(f"preprocess key {key!r}: {msg}") from exc


def postprocess(task: str, side: dict[str, Any]) -> Postprocess:
    kind = "softmax_topk" if task == "classify" else "detect"
    try:
        return Postprocess.model_validate({"kind": kind, **side.get("postprocess", {})})
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise ModelInputError(f"postprocess key {key!r}: {msg}") from exc


def labels(path: Path | None, side: dict[str, Any], classes: int) -> list[str]:
    source = path or (Path(side["labels"]) if "labels" in side else None)
    if source is None:
        return [f"class_{i}" for i in range(classes)]
    try:
        names = [line.strip() for line in source.read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ModelInputError(f"{source}: cannot read labels ({exc.strerror})") from exc
    if classes > 0 and len(names) != classes:
        raise ModelInputError(f"{source}: {len(names)} labels, but the model has {classes} outputs")
    return names


def _json_or_file(value: str, flag: str) -> dict[str, Any]:
    text = Path(value).read_text() if not value.lstrip().startswith("{") and Path(value).is_file() else value
    try:
        data: dict[str, Any] = json.loads(text)
    except ValueError as exc:
        raise ModelInputError(f"{flag}: neither JSON nor a JSON file ({exc})") from exc
    return data
