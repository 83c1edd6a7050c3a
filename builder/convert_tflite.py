"""TFLite full-INT8 through onnx2tf + TFLiteConverter, run in the isolated toolchain as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from runtimes.manifest import Requirements, TensorSpec
from runtimes.processing import dequantize, to_input

from . import toolchains
from .context import BuildContext, TargetOutput
from .convert_onnx import rel
from .errors import TargetFailed
from .onnxinfo import nchw_input
from .outputs import match

MATCH_IMAGES = 8
SCRIPT = Path(__file__).parent / "toolchain" / "onnx_to_tflite.py"
TIMEOUT_S = 900


def tflite_int8(ctx: BuildContext, out: Path) -> TargetOutput:
    python = toolchains.python("tflite")
    work = ctx.workdir / "tflite"
    work.mkdir(parents=True, exist_ok=True)
    calib = ctx.calib_tensors(ctx.info.input.model_copy(update={"layout": "NHWC", "dtype": "float32"}))
    np.save(work / "calib.npy", calib.astype(np.float32))
    path = out / "tflite-int8" / "model.tflite"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.progress("onnx2tf + TFLiteConverter (isolated toolchain, about a minute)")
    model = nchw_input(ctx.static_onnx(), work / "nchw.onnx", ctx.info)
    cmd = [str(python), str(SCRIPT), str(model), str(work / "calib.npy"), str(path), str(work)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TargetFailed(f"onnx2tf took longer than {TIMEOUT_S} s") from exc
    if proc.returncode != 0 or not path.is_file():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise TargetFailed(f"onnx2tf/TFLiteConverter failed (exit {proc.returncode}):\n{tail}")
    specs = json.loads(proc.stdout.strip().splitlines()[-1])
    inputs = [_spec(s, "NHWC") for s in specs["inputs"]]
    outputs = _name_outputs(ctx, path, inputs[0], [_spec(s, None) for s in specs["outputs"]])
    return TargetOutput([rel(out, path)], inputs, outputs,
                        Requirements(packages={"ai-edge-litert|tflite-runtime": "2.14"}))


def _name_outputs(ctx: BuildContext, path: Path, spec: TensorSpec, outputs: list[TensorSpec]) -> list[TensorSpec]:
    """onnx2tf renames, reorders and transposes outputs: match them to the source's on real images."""
    from runtimes import registry

    adapter = registry.create("tflite")
    adapter.load([path], {})
    try:
        images, reference = ctx.reference(MATCH_IMAGES)
        runs = [adapter.infer([to_input(images[i : i + 1], ctx.pre, spec)]) for i in range(len(images))]
    finally:
        adapter.close()
    arrays = [np.concatenate([dequantize(r[k], s) for r in runs]) for k, s in enumerate(outputs)]
    return match(outputs, arrays, reference)


def _spec(raw: dict[str, object], layout: str | None) -> TensorSpec:
    return TensorSpec.model_validate({**raw, "layout": layout})
