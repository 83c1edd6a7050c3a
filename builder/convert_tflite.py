"""TFLite full-INT8 through onnx2tf + TFLiteConverter, run in the isolated toolchain as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from fleet import toolchain
from runtimes.manifest import Requirements, TensorSpec

from .context import BuildContext, TargetOutput
from .convert_onnx import rel
from .errors import TargetFailed
from .onnxinfo import nchw_input

SCRIPT = Path(__file__).parent / "toolchain" / "onnx_to_tflite.py"
TIMEOUT_S = 900


def tflite_int8(ctx: BuildContext, out: Path) -> TargetOutput:
    python = toolchain.python("tflite")
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
    outputs = [_spec(s, None) for s in specs["outputs"]]
    return TargetOutput([rel(out, path)], inputs, outputs,
                        Requirements(packages={"ai-edge-litert|tflite-runtime": "2.14"}))


def _spec(raw: dict[str, object], layout: str | None) -> TensorSpec:
    return TensorSpec.model_validate({**raw, "layout": layout})
