"""Which nodes of a quantised ONNX graph cost the most accuracy: run the float graph and its QDQ copy on a few
calibration images with every intermediate tensor exposed, and measure for each node how much signal-to-
quantisation-noise ratio (dB) its output loses against its inputs. Accuracy recovery keeps the worst in float."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.processing import Array

from .onnxrun import session

IMAGES = 4
# Keeping a weighted node in float removes the quantisation of its weights and its input; other nodes only
# move where an activation is quantised.
WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul"}


def ranked_nodes(float_path: Path, qdq_path: Path, tensors: Array, work: Path) -> list[tuple[str, float]]:
    """(node name, dB of SQNR the node loses), worst first; only nodes of the float graph."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(float_path)))
    floats = _float_tensors(model)
    inits = {i.name for i in model.graph.initializer}
    nodes = [(n.name, [i for i in n.input if i in floats and i not in inits], n.output[0]) for n in model.graph.node
             if n.output and n.output[0] in floats]
    names = sorted({t for _, ins, out in nodes for t in (*ins, out)} - {i.name for i in model.graph.input})
    weighted = {n.name for n in model.graph.node if n.op_type in WEIGHTED}
    sqnr = _sqnr(_expose(float_path, names, work / "float.all.onnx"), _expose(qdq_path, names, work / "qdq.all.onnx"),
                 tensors[:IMAGES], names)
    graph_inputs = {i.name for i in model.graph.input}
    drops = []
    for name, ins, out in nodes:
        measured = [sqnr[i] for i in ins if i in sqnr] + [100.0 for i in ins if i in graph_inputs]
        # Only weighted nodes whose tensors both graphs still carry (QDQ folds a Relu after a Conv away).
        if name and name in weighted and out in sqnr and len(measured) == len(ins):
            drops.append((name, min(measured, default=100.0) - sqnr[out]))
    return sorted(drops, key=lambda d: -d[1])


def _float_tensors(model: Any) -> set[str]:
    import onnx

    infos = [*model.graph.value_info, *model.graph.input, *model.graph.output]
    return {vi.name for vi in infos if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}


def _expose(src: Path, names: list[str], dst: Path) -> Path:
    """A copy whose outputs include every tensor named (those the graph has)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(src))
    produced = {o for n in model.graph.node for o in n.output}
    have = {o.name for o in model.graph.output}
    for name in names:
        if name in produced and name not in have:
            model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(dst))
    return dst


def _sqnr(float_path: Path, qdq_path: Path, tensors: Array, names: list[str]) -> dict[str, float]:
    """Per tensor: 10·log10(Σ float² / Σ (float − quantised)²), one image at a time (activations of a large
    input fill memory)."""
    fs, qs = session(float_path), session(qdq_path)
    inp = fs.get_inputs()[0].name
    f_names, q_names = [o.name for o in fs.get_outputs()], [o.name for o in qs.get_outputs()]
    signal: dict[str, float] = defaultdict(float)
    noise: dict[str, float] = defaultdict(float)
    for i in range(len(tensors)):
        x = {inp: tensors[i : i + 1].astype(np.float32)}
        f = dict(zip(f_names, fs.run(None, x), strict=True))
        q = dict(zip(q_names, qs.run(None, x), strict=True))
        for name in names:
            if name in f and name in q and f[name].shape == q[name].shape:
                a, b = f[name].astype(np.float64), q[name].astype(np.float64)
                signal[name] += float(np.sum(a * a))
                noise[name] += float(np.sum((a - b) ** 2))
    return {n: 10 * math.log10(max(signal[n], 1e-30) / noise[n]) if noise[n] > 0 else 100.0 for n in signal}
