"""OpenVINO IR targets: FP16-compressed weights, and INT8 through NNCF post-training quantisation."""

from __future__ import annotations

from pathlib import Path

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
