"""What the builder needs to know about an ONNX graph: its image input and its outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    if input_name:
        inputs = [i for i in inputs if i.name == input_name]
        if not inputs:
            raise ModelInputError(f"{path}: no input named {input_name!r}")
    elif len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise ModelInputError(f"{path}: {len(inputs)} inputs ({names}); choose the image input with --input")
    shape = _dims(inputs[0])
    spec = TensorSpec(name=inputs[0].name, shape=shape, layout=_layout(shape, str(path)),
                      dtype=ONNX_DTYPES.get(inputs[0].type.tensor_type.elem_type, "float32"))
    outputs = [TensorSpec(name=o.name, shape=_dims(o), dtype=ONNX_DTYPES.get(o.type.tensor_type.elem_type, "float32"))
               for o in model.graph.output]
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return OnnxInfo(path, spec, outputs, opset)


def make_static(src: Path, dst: Path, info: OnnxInfo) -> Path:
    """A batch-1, fully static copy (onnx2tf and TensorRT want one)."""
    import onnx
    import onnxslim
    from onnx.tools import update_model_dims

    model = onnx.load(str(src))
    in_shape = [1, *info.input.shape[1:]]
    out_shapes = {o.name: [1, *[d if d > 0 else 1 for d in o.shape[1:]]] for o in info.outputs}
    model = update_model_dims.update_inputs_outputs_dims(model, {info.input.name: in_shape}, out_shapes)
    model = onnxslim.slim(model)
    onnx.save(model, str(dst))
    return dst


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
    onnx.save(onnxslim.slim(model), str(dst))
    return dst
