"""The TensorRT recipe for Jetson: static FP16 and symmetric-QDQ INT8 ONNX plus build settings.

TensorRT 10+/11 networks are strongly typed: the precision comes from the graph, so the recipe ships
one graph per precision; the device builds and caches the engine (runtimes/adapters/tensorrt.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from runtimes.manifest import Requirements

from .context import BuildContext, TargetOutput
from .convert_onnx import quantize_qdq, rel

CACHE_KEY_FIELDS = ["model_sha256", "gpu", "compute_capability", "tensorrt", "cuda", "l4t", "precision"]


def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    # Float32 I/O keeps the same pre/post-processing as every other artifact.
    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dst))


def tensorrt_recipe(ctx: BuildContext, out: Path) -> TargetOutput:
    folder = out / "tensorrt"
    folder.mkdir(parents=True, exist_ok=True)
    static = ctx.static_onnx()
    ctx.progress("static FP16 ONNX")
    _to_fp16(static, folder / "model_fp16.onnx")
    ctx.progress("symmetric QDQ INT8 ONNX")
    quantize_qdq(ctx, static, folder / "model_int8_qdq.onnx", symmetric=True)
    recipe = {
        "onnx": {"fp16": "model_fp16.onnx", "int8": "model_int8_qdq.onnx"},
        "strongly_typed": True,
        "workspace_mb": 1024,
        "input_shape": [1, *ctx.info.input.shape[1:]],
        "cache_key_fields": CACHE_KEY_FIELDS,
    }
    (folder / "recipe.json").write_text(json.dumps(recipe, indent=2))
    files = [rel(out, folder / n) for n in ("recipe.json", "model_fp16.onnx", "model_int8_qdq.onnx")]
    spec = ctx.info.input.model_copy(update={"dtype": "float32", "shape": recipe["input_shape"]})
    outputs = [o.model_copy(update={"shape": [1, *o.shape[1:]]}) for o in ctx.info.outputs]
    return TargetOutput(files, [spec], outputs, Requirements(packages={"tensorrt": "10.0"}, gpu=True),
                        settings={"precisions": ["fp16", "int8"], "recipe": "tensorrt/recipe.json"})
