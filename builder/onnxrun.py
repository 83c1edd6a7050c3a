"""Running an ONNX graph on the build host with ONNX Runtime: the FP32 reference every artifact is held to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.processing import Array
from runtimes.tasks import Outputs

from .errors import ModelInputError

BATCH = 16


def session(path: Path) -> Any:
    import onnxruntime as ort

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelInputError(f"{path}: ONNX Runtime cannot load it: {_first_line(exc)}") from exc


def run(path: Path, x: Array, sess: Any = None) -> Outputs:
    """Every output of the graph on x, by name; fed in the graph's own batch size when it is static."""
    sess = sess or session(path)
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else 0
    step = fixed or BATCH
    names = [o.name for o in sess.get_outputs()]
    parts = []
    for i in range(0, len(x), step):
        chunk = x[i : i + step]
        if fixed and len(chunk) < fixed:  # a static batch: pad the last chunk, drop the padding after
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - len(chunk), axis=0)])
        try:
            out = sess.run(None, {inp.name: chunk.astype(np.float32, copy=False)})
        except Exception as exc:
            raise ModelInputError(f"{path}: ONNX Runtime failed on the input ({_first_line(exc)})") from exc
        parts.append([o[: min(step, len(x) - i)] for o in out])
    return {n: np.concatenate([p[k] for p in parts]).astype(np.float32) for k, n in enumerate(names)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
