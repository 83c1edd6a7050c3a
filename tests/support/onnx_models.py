"""Small ONNX graphs the builder has never seen, made in code (no downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def small_cnn(path: Path, height: int | str = 96, width: int | str = 128, classes: int = 10,
              extra_op: str | None = None, two_inputs: bool = False, batch: int | str = "N", nhwc: bool = False,
              two_outputs: bool = False) -> Path:
    """Conv-ReLU-Conv-ReLU-GAP-Gemm on a non-square input; optionally one contrib op or a second input, a
    static batch, dynamic height/width (pass names), an NHWC input, or a second output (the pooled features)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (16, 8, 3, 3)).astype(np.float32), "w2")
    fc = numpy_helper.from_array(rng.normal(0, 0.5, (16, classes)).astype(np.float32), "fc")
    first = "image_nchw" if nhwc else "image"
    nodes = [
        helper.make_node("Conv", [first, "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
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
    if nhwc:
        nodes.insert(0, helper.make_node("Transpose", ["image"], ["image_nchw"], perm=[0, 3, 1, 2]))
    shape = [batch, height, width, 3] if nhwc else [batch, 3, height, width]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)]
    if two_inputs:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 1]))
    outputs = [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, classes])]
    if two_outputs:
        outputs.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, [batch, 16]))
    graph = helper.make_graph(nodes, "small_cnn", inputs, outputs, initializer=[w1, w2, fc])
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def yolo_head(path: Path, classes: int = 3, size: int = 64) -> Path:
    """A YOLOv8-shaped detector made in code: a strided conv backbone and a 1x1 head whose output is laid out as
    Ultralytics exports it, [1, 4 + classes, N] (cx, cy, w, h in input pixels, sigmoid class scores). Seeded
    weights: real YOLO weights ship in no package this machine can install without a CUDA torch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(1)
    cells = (size // 8) ** 2
    inits = [numpy_helper.from_array(rng.normal(0, 0.2, shape).astype(np.float32), name) for name, shape in
             (("w1", (16, 3, 3, 3)), ("w2", (32, 16, 3, 3)), ("w3", (32, 32, 3, 3)), ("head", (4 + classes, 32, 1, 1)))]
    grid = np.stack(np.meshgrid(np.arange(size // 8), np.arange(size // 8)), 0).reshape(1, 2, cells) * 8.0 + 4.0
    inits += [numpy_helper.from_array(grid.astype(np.float32), "grid"),
              numpy_helper.from_array(np.asarray([1, 4 + classes, cells], np.int64), "flat"),
              numpy_helper.from_array(np.asarray([0, 2, 4, 4 + classes], np.int64), "splits")]
    nodes = [
        helper.make_node("Conv", ["images", "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Conv", ["r2", "w3"], ["c3"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c3"], ["r3"]),
        helper.make_node("Conv", ["r3", "head"], ["h"]),
        helper.make_node("Reshape", ["h", "flat"], ["hf"]),
        helper.make_node("Split", ["hf", "sizes"], ["xy", "wh", "cls"], axis=1),
        helper.make_node("Tanh", ["xy"], ["xyt"]),
        helper.make_node("Mul", ["xyt", "eight"], ["xyo"]),
        helper.make_node("Add", ["xyo", "grid"], ["cxcy"]),
        helper.make_node("Sigmoid", ["wh"], ["whs"]),
        helper.make_node("Mul", ["whs", "span"], ["boxwh"]),
        helper.make_node("Sigmoid", ["cls"], ["scores"]),
        helper.make_node("Concat", ["cxcy", "boxwh", "scores"], ["output0"], axis=1),
    ]
    inits += [numpy_helper.from_array(np.asarray([2, 2, classes], np.int64), "sizes"),
              numpy_helper.from_array(np.asarray(8.0, np.float32), "eight"),
              numpy_helper.from_array(np.asarray(size / 2, np.float32), "span")]
    inits = [i for i in inits if i.name != "splits"]
    graph = helper.make_graph(nodes, "yolo_head",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, cells])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path
