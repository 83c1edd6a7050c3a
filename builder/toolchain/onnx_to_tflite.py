"""Runs inside the isolated TFLite toolchain (onnx2tf 1.29 + tensorflow 2.19), never in the agent stack.

    python onnx_to_tflite.py MODEL.onnx CALIB.npy OUT.tflite WORKDIR

MODEL.onnx: static batch-1. CALIB.npy: float32 NHWC inputs, already normalised as the model expects.
Prints one JSON line with the input/output tensor specs (name, shape, dtype, quantisation).
Stays offline: onnx2tf downloads a sample calibration file unless it is in the working directory,
so we write one from our own calibration data first.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np

SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


def write_offline_sample(calib: np.ndarray, workdir: Path) -> None:
    import tensorflow as tf

    sample = tf.image.resize(calib[:20], (128, 128)).numpy().astype(np.float32)
    np.save(workdir / SAMPLE, sample)


def convert_saved_model(onnx_path: Path, workdir: Path) -> Path:
    import onnx2tf

    saved = workdir / "saved_model"
    onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(saved),
                    non_verbose=True, copy_onnx_input_output_names_to_tflite=True)
    return saved


def quantize(saved: Path, calib: np.ndarray, out: Path) -> None:
    import tensorflow as tf

    def representative():
        for i in range(len(calib)):
            yield [calib[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.uint8
    out.write_bytes(conv.convert())


def describe(out: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(out))

    def spec(d):
        scale, zp = d["quantization"]
        return {"name": d["name"], "shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "quant": {"scale": float(scale), "zero_point": int(zp)} if scale else None}

    return {"inputs": [spec(d) for d in interp.get_input_details()],
            "outputs": [spec(d) for d in interp.get_output_details()]}


def main() -> None:
    onnx_path, calib_path, out, workdir = (Path(a).resolve() for a in sys.argv[1:5])
    workdir.mkdir(parents=True, exist_ok=True)
    calib = np.load(calib_path).astype(np.float32)
    os.chdir(workdir)
    write_offline_sample(calib, workdir)
    saved = convert_saved_model(onnx_path, workdir)
    quantize(saved, calib, out)
    print(json.dumps(describe(out)))


if __name__ == "__main__":
    main()
