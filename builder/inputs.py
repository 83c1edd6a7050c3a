"""Model inputs. ONNX is primary; SavedModel, Keras and .tflite go through tf2onnx in the isolated
toolchain; a PyTorch exported program goes through torch.onnx.export where torch is installed.
The format is read from the file's content, not its name.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from fleet import toolchain

from .errors import ModelInputError

OPSET = 13


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
    flag = {"savedmodel": "--saved-model", "keras": "--keras", "tflite": "--tflite"}[fmt]
    python = toolchain.python("tflite")
    cmd = [str(python), "-m", "tf2onnx.convert", flag, str(path), "--output", str(out), "--opset", str(OPSET)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise ModelInputError(f"{path}: tf2onnx could not convert this {fmt} model:\n{tail}")


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
