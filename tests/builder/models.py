"""Small ONNX graphs the builder has never seen, made in code (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def small_cnn(path: Path, height: int = 96, width: int = 128, classes: int = 10, extra_op: str | None = None,
              two_inputs: bool = False) -> Path:
    """Conv-ReLU-Conv-ReLU-GAP-Gemm on a non-square input; optionally one contrib op or a second input."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (16, 8, 3, 3)).astype(np.float32), "w2")
    fc = numpy_helper.from_array(rng.normal(0, 0.5, (16, classes)).astype(np.float32), "fc")
    nodes = [
        helper.make_node("Conv", ["image", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "fc"], ["scores"]),
    ]
    opsets = [helper.make_opsetid("", 13)]
    if extra_op:
        nodes[1] = helper.make_node(extra_op, ["c1"], ["r1"], domain="com.microsoft")
        opsets.append(helper.make_opsetid("com.microsoft", 1))
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, height, width])]
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1]))
    graph = helper.make_graph(nodes, "small_cnn", inputs,
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", classes])],
                              initializer=[w1, w2, fc])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
