"""Which source output each converted artifact output carries. Converters rename outputs, reorder them and
turn 4-D outputs NHWC (onnx2tf): the builder runs the artifact and the source on the same calibration images
and names each artifact output after the source output it matches best, with the axis permutation that
brings it back to the source's layout. The device then reads outputs by their source names."""

from __future__ import annotations

import numpy as np

from runtimes.manifest import TensorSpec
from runtimes.processing import Array
from runtimes.tasks import Outputs

PERMS: dict[int, list[list[int] | None]] = {
    3: [None, [0, 2, 1]],
    4: [None, [0, 3, 1, 2], [0, 2, 3, 1]],
}
MIN_COSINE = 0.8  # below this an output matches nothing: it keeps its own name


def match(specs: list[TensorSpec], arrays: list[Array], reference: Outputs) -> list[TensorSpec]:
    used: set[str] = set()
    named = []
    for spec, array in zip(specs, arrays, strict=True):
        best = _best(spec, array, reference, used)
        if best is None:
            named.append(spec)
            continue
        name, perm = best
        used.add(name)
        named.append(spec.model_copy(update={"source": None if name == spec.name and perm is None else name,
                                             "perm": perm}))
    return named


def _best(spec: TensorSpec, array: Array, reference: Outputs, used: set[str]) -> tuple[str, list[int] | None] | None:
    found: tuple[float, str, list[int] | None] | None = None
    for name, ref in reference.items():
        if name in used:
            continue
        for perm in PERMS.get(array.ndim, [None]):
            moved = array.transpose(perm) if perm else array
            if moved.shape != ref.shape:
                continue
            score = _cosine(moved, ref) + (0.01 if name == spec.name else 0.0)
            if found is None or score > found[0]:
                found = (score, name, perm)
    if found is None or found[0] < MIN_COSINE:
        return None
    return found[1], found[2]


def _cosine(a: Array, b: Array) -> float:
    x, y = a.reshape(-1).astype(np.float64), b.reshape(-1).astype(np.float64)
    denom = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(np.dot(x, y) / denom) if denom else float(np.array_equal(x, y))
