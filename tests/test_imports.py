"""Importing our packages stays light: no runtime library until an adapter is used."""

import subprocess
import sys

HEAVY = ["onnxruntime", "openvino", "tensorrt", "ai_edge_litert", "tflite_runtime", "cv2", "onnx", "nncf", "torch"]


def _loaded_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_runtimes_imports_no_runtime() -> None:
    assert _loaded_after("import runtimes, runtimes.registry, runtimes.bundle, runtimes.model") == []


def test_cli_modules_import_no_runtime() -> None:
    assert _loaded_after("import edgectl.app, agent.cli") == []
