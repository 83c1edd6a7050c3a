"""ONNX targets: simplified FP32, and static QDQ INT8 (per-channel weights, uint8 activations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtimes.manifest import Requirements

from . import onnxrun
from .context import BuildContext, TargetOutput
from .errors import TargetFailed

ORT_MIN = "1.16"


def onnx_fp32(ctx: BuildContext, out: Path) -> TargetOutput:
    import onnx
    import onnxslim

    path = out / "onnx-fp32" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.progress("onnxslim")
    model = onnxslim.slim(onnx.load(str(ctx.source)))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    _check_equivalent(ctx, path)
    return TargetOutput([rel(out, path)], [ctx.info.input.model_copy(update={"dtype": "float32"})],
                        ctx.info.outputs, Requirements(packages={"onnxruntime": ORT_MIN}))


def _check_equivalent(ctx: BuildContext, simplified: Path, tol: float = 1e-3) -> None:
    x = ctx.calib_tensors()[:8]
    a, b = onnxrun.run(ctx.source, x), onnxrun.run(simplified, x)
    worst = max(float(np.abs(a[k] - b[k]).max()) / max(1.0, float(np.abs(a[k]).max())) for k in a)
    if worst > tol:
        raise TargetFailed(f"onnxslim changed the outputs (max relative diff {worst:.2e} > {tol})")


class _Reader:
    """onnxruntime's calibration data reader over our calibration tensors."""

    def __init__(self, name: str, tensors: np.ndarray[Any, Any]) -> None:
        self._items = iter([{name: tensors[i : i + 1]} for i in range(len(tensors))])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


def quantize_qdq(ctx: BuildContext, src: Path, dst: Path, symmetric: bool, exclude: list[str] | None = None) -> Path:
    """Static QDQ with per-channel weights. Symmetric int8 activations for TensorRT; uint8 otherwise
    (u8 activations with s8 weights run 1.7x faster than s8/s8 on x86 for the same accuracy). The u8/s8
    artifact's weights use 7 bits (`reduce_range`): x86 CPUs without VNNI multiply u8 by s8 in pairs that
    saturate at int16, which cost EfficientNet-Lite0 top-5 0.96 instead of 0.99 on an AVX2-only host. The
    artifact runs on devices we do not know, so it is made safe for all of them.
    `exclude`: nodes kept in float besides the float tail (accuracy recovery). Returns the float graph that
    was quantised (in the work directory), whose node names `exclude` uses."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepped = ctx.workdir / f"{dst.parent.name}-{dst.stem}.prep.onnx"
    op13 = ctx.workdir / f"{dst.parent.name}-{dst.stem}.op13.onnx"
    quant_pre_process(str(at_least_opset_13(src, op13)), str(prepped), skip_symbolic_shape=True)
    tensors = ctx.calib_tensors()
    count = calibration_count(prepped, len(tensors))
    if count < len(tensors):
        ctx.progress(f"calibrating on {count} of {len(tensors)} images (activations of larger inputs fill memory)")
    quantize_static(
        str(prepped), str(dst), _Reader(ctx.info.input.name, tensors[:count]),
        quant_format=QuantFormat.QDQ, per_channel=True, nodes_to_exclude=float_tail(prepped) + (exclude or []),
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.Percentile, reduce_range=not symmetric,
        extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
    )
    return prepped


# ONNX Runtime's calibrator keeps every intermediate tensor of every calibration image in memory before it
# builds its histograms: a 640x480 text detector takes ~150 MB an image. This caps what it may hold.
CALIBRATION_BYTES = 3 << 30
MIN_CALIBRATION = 16


def calibration_count(path: Path, available: int) -> int:
    per_image = activation_bytes(path)
    return max(min(MIN_CALIBRATION, available), min(available, CALIBRATION_BYTES // max(per_image, 1)))


def activation_bytes(path: Path) -> int:
    """Bytes of every float tensor one image produces (dynamic dimensions counted as 1)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    total = 0
    for vi in [*model.graph.value_info, *model.graph.output]:
        t = vi.type.tensor_type
        if t.elem_type == onnx.TensorProto.FLOAT:
            total += 4 * int(np.prod([max(d.dim_value, 1) for d in t.shape.dim]))
    return total


def at_least_opset_13(src: Path, dst: Path) -> Path:
    """Per-channel QDQ needs opset 13 (DequantizeLinear's axis): older graphs are converted first."""
    import onnx
    from onnx import version_converter

    model = onnx.load(str(src))
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    if opset >= 13:
        return src
    try:
        onnx.save(version_converter.convert_version(model, 13), str(dst))
    except Exception as exc:  # onnx raises plain RuntimeErrors from C++
        raise TargetFailed(f"the model is opset {opset}; converting it to opset 13 for INT8 failed: {exc}") from exc
    return dst


WEIGHTED_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm"}


def float_tail(path: Path) -> list[str]:
    """Nodes after the last weighted op (a detector's anchor decoding, sigmoid and concat): cheap in float,
    and quantising them puts boxes and scores on one scale. BlazeFace's matched-box agreement went from
    0.82 to 0.97 by leaving them in float; a classifier ending in Gemm has no tail."""
    import onnx

    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    unnamed = [n for n in nodes if not n.name]
    for i, node in enumerate(unnamed):  # the quantiser excludes nodes by name
        node.name = f"edgectl_node_{i}"
    if unnamed:
        onnx.save(model, str(path))
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    feeds = [False] * len(nodes)
    for i in reversed(range(len(nodes))):  # ONNX graphs are topologically sorted
        feeds[i] = nodes[i].op_type in WEIGHTED_OPS or any(
            feeds[j] for out in nodes[i].output for j in consumers.get(out, []))
    return [n.name for n, f in zip(nodes, feeds, strict=True) if not f]


def onnx_int8(ctx: BuildContext, out: Path) -> TargetOutput:
    return _onnx_int8(ctx, out, [])


def onnx_int8_recover(ctx: BuildContext, out: Path, attempt: int) -> TargetOutput | None:
    """Attempt n keeps the 2^n nodes that lose the most SQNR in float (at most a quarter of the graph)."""
    from .sensitivity import ranked_nodes

    path = out / "onnx-int8" / "model.onnx"
    if "onnx-int8" not in ctx.memo:
        ctx.progress("measuring per-node quantisation loss")
        prepped = ctx.workdir / "onnx-int8-model.prep.onnx"
        ctx.memo["onnx-int8"] = [n for n, _ in ranked_nodes(prepped, path, ctx.calib_tensors(), ctx.workdir)]
    ranked = ctx.memo["onnx-int8"]
    count = 2**attempt
    if count > max(1, len(ranked) // 4):
        return None
    return _onnx_int8(ctx, out, ranked[:count])


def _onnx_int8(ctx: BuildContext, out: Path, keep_float: list[str]) -> TargetOutput:
    path = out / "onnx-int8" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    ctx.progress("quantising (static QDQ, per-channel, u8 activations)" if not keep_float else
                 f"quantising with {len(keep_float)} node(s) kept in float")
    quantize_qdq(ctx, ctx.source, path, symmetric=False, exclude=keep_float)
    return TargetOutput([rel(out, path)], [ctx.info.input.model_copy(update={"dtype": "float32"})],
                        ctx.info.outputs, Requirements(packages={"onnxruntime": ORT_MIN}), kept_float=keep_float)


def rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
