"""What the builder needs to know about an ONNX graph: its image input and its outputs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.manifest import DType, Layout, TensorSpec

from .errors import ModelInputError

ONNX_DTYPES: dict[int, DType] = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16"}


@dataclass(frozen=True)
class OnnxInfo:
    path: Path
    input: TensorSpec
    outputs: list[TensorSpec]
    opset: int

    @property
    def height(self) -> int:
        return self.input.shape[2] if self.input.layout == "NCHW" else self.input.shape[1]

    @property
    def width(self) -> int:
        return self.input.shape[3] if self.input.layout == "NCHW" else self.input.shape[2]


def _dims(value_info: object) -> list[int]:
    dims = value_info.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    return [int(d.dim_value) if d.dim_value > 0 else -1 for d in dims]


def _layout(shape: list[int], where: str) -> Layout:
    if len(shape) != 4:
        raise ModelInputError(f"{where}: image input must be 4-D, got shape {shape}")
    if shape[1] in (1, 3):
        return "NCHW"
    if shape[3] in (1, 3):
        return "NHWC"
    raise ModelInputError(f"{where}: cannot tell the channel axis of input shape {shape}")


def inspect(path: Path, input_name: str | None = None) -> OnnxInfo:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    names = ", ".join(i.name for i in inputs)
    if input_name and input_name not in [i.name for i in inputs]:
        raise ModelInputError(f"{path}: --input {input_name!r}: no such input (inputs: {names})")
    if len(inputs) != 1:
        # A device feeds one camera image: every other input would need a value nobody can give it.
        hint = "" if input_name else "; name the image input with --input"
        raise ModelInputError(f"{path}: {len(inputs)} inputs ({names}); edgectl feeds one image input, the "
                              f"others must be constants in the graph{hint}")
    shape = _dims(inputs[0])
    spec = TensorSpec(name=inputs[0].name, shape=shape, layout=_layout(shape, str(path)),
                      dtype=ONNX_DTYPES.get(inputs[0].type.tensor_type.elem_type, "float32"))
    outputs = [TensorSpec(name=o.name, shape=_dims(o), dtype=ONNX_DTYPES.get(o.type.tensor_type.elem_type, "float32"))
               for o in model.graph.output]
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxInfo(path, spec, outputs, opset)


def parse_shapes(flags: list[str]) -> dict[str, list[int]]:
    """`--input-shape NAME=D0,D1,…` (repeatable; -1 keeps a dimension dynamic)."""
    shapes: dict[str, list[int]] = {}
    for flag in flags:
        name, sep, dims = flag.partition("=")
        try:
            values = [int(d) for d in dims.split(",")] if sep and name else []
        except ValueError:
            values = []
        if not values or any(v == 0 or v < -1 for v in values):
            raise ModelInputError(f"--input-shape {flag!r}: expected NAME=D0,D1,… with positive sizes (-1: dynamic)")
        shapes[name] = values
    return shapes


def fix_shapes(src: Path, dst: Path, info: OnnxInfo, shapes: dict[str, list[int]]) -> Path:
    """Apply --input-shape, or refuse an image input whose height, width or channels are dynamic: the camera
    frame is resized to one size, and every static target needs it."""
    want = shapes.pop(info.input.name, None)
    if shapes:
        raise ModelInputError(f"--input-shape: no input named {', '.join(shapes)} (the image input is "
                              f"{info.input.name!r})")
    if want is None:
        if any(d <= 0 for d in info.input.shape[1:]):
            raise ModelInputError(f"{src}: input {info.input.name!r} has dynamic dimensions {info.input.shape}; fix "
                                  f"them with --input-shape {info.input.name}={_example(info)}")
        return src
    if len(want) != len(info.input.shape) or any(d <= 0 for d in want[1:]):
        raise ModelInputError(f"--input-shape {info.input.name}: {want} does not fit the input {info.input.shape} "
                              "(same rank; only the batch may stay -1)")
    return _with_input_dims(src, dst, info.input.name, want)


def _example(info: OnnxInfo) -> str:
    nchw = info.input.layout == "NCHW"
    dims = [1, 3, 224, 224] if nchw else [1, 224, 224, 3]
    return ",".join(str(d if d > 0 else e) for d, e in zip(info.input.shape, dims, strict=False))


def _with_input_dims(src: Path, dst: Path, name: str, dims: list[int]) -> Path:
    """A copy with the input's dimensions set and the outputs' left to shape inference."""
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(src))
    for vi in model.graph.input:
        if vi.name == name:
            for dim, value in zip(vi.type.tensor_type.shape.dim, dims, strict=True):
                if value > 0:
                    dim.Clear()
                    dim.dim_value = value
    for vi in model.graph.output:
        for i, dim in enumerate(vi.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{vi.name}_d{i}"
    del model.graph.value_info[:]
    try:
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises its own InferenceError types
        raise ModelInputError(f"{src}: shape inference with --input-shape {name}={dims} failed: {exc}") from exc
    onnx.save(model, str(dst))
    return dst


def make_static(src: Path, dst: Path, info: OnnxInfo) -> Path:
    """A batch-1, fully static copy (onnx2tf and TensorRT want one)."""
    import onnx
    import onnxslim

    fixed = _with_input_dims(src, dst, info.input.name, [1, *info.input.shape[1:]])
    onnx.save(_tf_safe_names(onnxslim.slim(onnx.load(str(fixed)))), str(dst))
    return dst


def _tf_safe_names(model: Any) -> Any:
    """TensorFlow (onnx2tf) takes node names as scope names: 'Softmax@0' from a Paddle export is refused."""
    for node in model.graph.node:
        node.name = re.sub(r"[^A-Za-z0-9_.\\/>-]", "_", node.name)
    return model


def nchw_input(src: Path, dst: Path, info: OnnxInfo) -> Path:
    """onnx2tf assumes an NCHW input and turns it into NHWC: a model that already takes NHWC (one that came
    from TFLite or TF through tf2onnx) gets an NCHW input and a transpose in front, which onnx2tf folds."""
    import onnx
    import onnxslim
    from onnx import helper

    if info.input.layout != "NHWC":
        return src
    model = onnx.load(str(src))
    g = model.graph
    old = next(i for i in g.input if i.name == info.input.name)
    n, h, w, c = (max(d, 1) for d in _dims(old))  # the static copy's dims (batch 1)
    inner = info.input.name + "_nhwc"
    for node in g.node:
        node.input[:] = [inner if name == info.input.name else name for name in node.input]
    g.node.insert(0, helper.make_node("Transpose", [info.input.name], [inner], perm=[0, 2, 3, 1]))
    old.CopyFrom(helper.make_tensor_value_info(info.input.name, old.type.tensor_type.elem_type, [n, c, h, w]))
    onnx.save(_tf_safe_names(onnxslim.slim(model)), str(dst))
    return dst
