"""The one table of targets: name, artifact format, precision, builder function, and how to check it here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .context import BuildContext, TargetOutput
from .convert_onnx import onnx_fp32, onnx_int8, onnx_int8_recover
from .convert_openvino import openvino_fp16, openvino_int8, openvino_int8_recover
from .convert_tensorrt import tensorrt_recipe
from .convert_tflite import tflite_int8
from .errors import BuilderError


@dataclass(frozen=True)
class TargetDef:
    name: str
    format: str  # the artifact's file format (runtimes.registry says which runtimes load it)
    precision: str
    build: Callable[[BuildContext, Path], TargetOutput]
    # How the build host checks accuracy and latency: runtime, options, and the file to load.
    # TensorRT cannot run here, so its recipe's ONNX graphs are checked on ONNX Runtime as a proxy.
    check_runtime: str
    check_options: dict[str, Any]
    check_file: int = 0
    # Accuracy recovery: attempt n builds the artifact with more of it kept in float; None when out of options.
    recover: Callable[[BuildContext, Path, int], TargetOutput | None] | None = None


TARGETS: dict[str, TargetDef] = {t.name: t for t in [
    TargetDef("onnx-fp32", "onnx", "fp32", onnx_fp32, "onnxruntime", {}),
    TargetDef("onnx-int8", "onnx", "int8", onnx_int8, "onnxruntime", {}, recover=onnx_int8_recover),
    # f32 hint on the FP16 IR: the CPU runs f32 compute on fp16-stored weights, which is what we gate.
    TargetDef("openvino-fp16", "openvino", "fp16", openvino_fp16, "openvino", {"precision": "f32"}),
    TargetDef("openvino-int8", "openvino", "int8", openvino_int8, "openvino", {}, recover=openvino_int8_recover),
    TargetDef("tflite-int8", "tflite", "int8", tflite_int8, "tflite", {}),
    TargetDef("tensorrt", "tensorrt", "fp16", tensorrt_recipe, "onnxruntime", {}, check_file=1),
]}


def parse_targets(spec: str) -> list[TargetDef]:
    if spec.strip() in ("", "all"):
        return list(TARGETS.values())
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise BuilderError(f"--targets: unknown {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    return [TARGETS[n] for n in names]
