"""OpenVINO IR targets: FP16-compressed weights, and INT8 through NNCF post-training quantisation."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.manifest import Requirements

from .context import BuildContext, TargetOutput
from .convert_onnx import rel

OV_MIN = "2024.0"


def _ir_files(out: Path, target: str) -> tuple[Path, Path]:
    folder = out / target
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "model.xml", folder / "model.bin"


def _output(ctx: BuildContext, out: Path, xml: Path, binf: Path) -> TargetOutput:
    # The manifest lists the .xml first: the adapter reads it and OpenVINO finds the .bin beside it.
    return TargetOutput([rel(out, xml), rel(out, binf)], [ctx.info.input.model_copy(update={"dtype": "float32"})],
                        ctx.info.outputs, Requirements(packages={"openvino": OV_MIN}))


def openvino_fp16(ctx: BuildContext, out: Path) -> TargetOutput:
    import openvino as ov

    xml, binf = _ir_files(out, "openvino-fp16")
    ctx.progress("convert_model → IR (FP16 weights)")
    ov.save_model(ov.convert_model(str(ctx.source)), str(xml), compress_to_fp16=True)
    return _output(ctx, out, xml, binf)


def openvino_int8(ctx: BuildContext, out: Path) -> TargetOutput:
    import nncf
    import openvino as ov

    xml, binf = _ir_files(out, "openvino-int8")
    ctx.progress("NNCF post-training quantisation")
    tensors = ctx.calib_tensors()
    dataset = nncf.Dataset([tensors[i : i + 1] for i in range(len(tensors))])
    quantized = nncf.quantize(ov.convert_model(str(ctx.source)), dataset, subset_size=len(tensors),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    return _output(ctx, out, xml, binf)


def openvino_int8_recover(ctx: BuildContext, out: Path, attempt: int) -> TargetOutput | None:
    """NNCF's accuracy control: it ranks the quantised layers by what they cost the task's own measure on the
    validation images and reverts the worst to float until the drop is within the gate (one attempt)."""
    if attempt > 0 or ctx.judge is None:
        return None
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    judge = ctx.judge
    xml, binf = _ir_files(out, "openvino-int8")
    before = _quantized_ops(ov.Core().read_model(str(xml))) if xml.is_file() else []
    ctx.progress("NNCF accuracy control (reverting the costliest layers to float)")
    tensors = ctx.calib_tensors()
    names = [o.name for o in ctx.info.outputs]

    seen: list[float] = []

    def validate(compiled: Any, items: Any) -> tuple[float, None]:
        if seen and time.monotonic() > ctx.recovery_deadline:
            # NNCF has no time limit: past the budget, the model is said to score as the best seen (the
            # float one), so NNCF stops where it is. Our own evaluation of what it returns decides the gate.
            return max(seen), None
        runs = [compiled(x) for x in items]
        outputs = {n: np.concatenate([r[i] for r in runs]).astype(np.float32) for i, n in enumerate(names)}
        seen.append(judge.score(outputs))
        return seen[-1], None

    quantized = nncf.quantize_with_accuracy_control(
        ov.convert_model(str(ctx.source)), nncf.Dataset([tensors[i : i + 1] for i in range(len(tensors))]),
        nncf.Dataset([judge.inputs[i : i + 1] for i in range(len(judge.inputs))]), validate,
        max_drop=judge.max_drop, subset_size=len(tensors), preset=nncf.QuantizationPreset.PERFORMANCE,
        advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=MAX_REVERTS))
    ov.save_model(quantized, str(xml), compress_to_fp16=False)
    output = _output(ctx, out, xml, binf)
    after = _quantized_ops(quantized)
    output.kept_float = [name for (name, was), (_, now) in zip(before, after, strict=False) if was and not now]
    return output


MAX_REVERTS = 16  # layers NNCF may return to float, one per iteration


WEIGHTED = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "GroupConvolutionBackpropData", "MatMul"}


def _quantized_ops(model: Any) -> list[tuple[str, bool]]:
    """Every weighted op in graph order, named, and whether its input comes through a FakeQuantize. OpenVINO
    renames the ops it fuses (a convolution with its batch norm becomes "Multiply_7575", another number each
    time a model is converted): those are named by type and position, which two conversions share."""
    ops = [op for op in model.get_ordered_ops() if op.get_type_name() in WEIGHTED]
    # The activation input: a saved IR folds the weights' FakeQuantize into int8 constants.
    return [(_stable_name(op, i, len(ops)), op.input_value(0).get_node().get_type_name() == "FakeQuantize")
            for i, op in enumerate(ops)]


def _stable_name(op: Any, index: int, count: int) -> str:
    name = str(op.get_friendly_name())
    return f"{op.get_type_name()} {index + 1}/{count}" if re.fullmatch(r"[A-Za-z]+_\d+", name) else name
