"""Model inputs. ONNX is primary; SavedModel, Keras and .tflite go through tf2onnx in the isolated
toolchain; a PyTorch exported program goes through torch.onnx.export where torch is installed.
The format is read from the file's content, not its name.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from . import toolchains
from .errors import ModelInputError

OPSET = 13  # PyTorch exports
OPSETS = (13, 15, 17)  # tf2onnx, tried in order


def detect_format(path: Path) -> str:
    if not path.exists():
        raise ModelInputError(f"{path}: no such file or directory")
    if path.is_dir():
        if (path / "saved_model.pb").is_file():
            return "savedmodel"
        raise ModelInputError(f"{path}: a directory, but not a TensorFlow SavedModel (no saved_model.pb)")
    head = path.read_bytes()[:8]
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(b"\x89HDF"):
        return "keras"
    if zipfile.is_zipfile(path):
        return _zip_format(path)
    if _is_onnx(path):
        return "onnx"
    raise ModelInputError(f"{path}: not a model edgectl can read (ONNX, SavedModel, Keras, .tflite, PyTorch .pt2)")


def _zip_format(path: Path) -> str:
    names = zipfile.ZipFile(path).namelist()
    if any(n.endswith("config.json") for n in names) and any("weights" in n for n in names):
        return "keras"
    if any(n.endswith(("serialized_exported_program.json", "models/model.json")) or "/archive_format" in n
           for n in names):
        return "pytorch"
    raise ModelInputError(f"{path}: a zip archive, but neither a Keras model nor a PyTorch exported program")


def _is_onnx(path: Path) -> bool:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:
        return False
    return len(model.graph.node) > 0


def to_onnx(path: Path, workdir: Path) -> tuple[Path, str]:
    """The model as an ONNX file, converting when needed; returns (onnx path, source format)."""
    fmt = detect_format(path)
    if fmt == "onnx":
        return path, fmt
    out = workdir / "source.onnx"
    if fmt == "pytorch":
        _from_pytorch(path, out)
    else:
        _from_tensorflow(path, fmt, out)
    return out, fmt


def _from_tensorflow(path: Path, fmt: str, out: Path) -> None:
    """tf2onnx at the lowest opset ONNX Runtime can run the result at: tf2onnx emits some ops (HardSwish,
    opset 14) at whatever opset it is asked for, so an opset that loads is found by trying."""
    flag = {"savedmodel": "--saved-model", "keras": "--keras", "tflite": "--tflite"}[fmt]
    python = toolchains.python("tflite")
    problem = ""
    for opset in OPSETS:
        cmd = [str(python), "-m", "tf2onnx.convert", flag, str(path), "--output", str(out), "--opset", str(opset)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.is_file():
            raise ModelInputError(f"{path}: tf2onnx cannot convert this {fmt} model: {_tf2onnx_cause(proc.stderr)}")
        _refuse_custom_ops(path, out)
        problem = _loads(out)
        if not problem:
            return
    raise ModelInputError(f"{path}: converted by tf2onnx, but ONNX Runtime cannot run it at opsets "
                          f"{', '.join(map(str, OPSETS))}: {problem}")


def _refuse_custom_ops(model: Path, converted: Path) -> None:
    """tf2onnx passes ops it cannot map through as TFL_<name> or with a custom domain: no runtime runs them."""
    import onnx

    graph = onnx.load(str(converted), load_external_data=False).graph
    custom = sorted({n.op_type.removeprefix("TFL_") for n in graph.node
                     if n.op_type.startswith("TFL_") or n.domain not in ("", "ai.onnx", "ai.onnx.ml")})
    if custom:
        raise ModelInputError(f"{model}: custom op {', '.join(custom)} has no ONNX equivalent (tf2onnx left it "
                              "unconverted), so no edgectl runtime can run this model")


def _loads(path: Path) -> str:
    """Why ONNX Runtime cannot load this graph, or "" when it can."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        return str(exc).strip().splitlines()[0][:300]
    return ""


def _tf2onnx_cause(stderr: str) -> str:
    """One line: the unsupported ops tf2onnx names, else its last error line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if "Unsupported ops" in line:
            return line[line.index("Unsupported ops") :][:300]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1][:300]


def _from_pytorch(path: Path, out: Path) -> None:
    try:
        import torch  # type: ignore[import-not-found]
    except ImportError as exc:
        raise ModelInputError(f"{path}: a PyTorch exported program, but torch is not installed here") from exc
    try:
        program = torch.export.load(str(path))
        args = program.example_inputs[0]
        torch.onnx.export(program.module(), args, str(out), opset_version=OPSET, dynamo=False)
    except Exception as exc:
        raise ModelInputError(f"{path}: torch could not export this program to ONNX: {exc}") from exc
