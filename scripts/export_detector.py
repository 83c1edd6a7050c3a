"""Re-create assets/models/blazeface_short.onnx (a real face detector) from the mediapipe 0.10.14 wheel.

    .venv/bin/python scripts/export_detector.py      (needs `edgectl toolchain install tflite` for tf2onnx)

Why this one: mediapipe's wheel carries BlazeFace-family detectors as .tflite. The short-range model
converts cleanly with tf2onnx; the full-range one is stored sparse (DENSIFY) and tf2onnx refuses it
("cannot reshape array of size 77 into shape (8,1,1,32)"); the pose detector's box is a face box too.

The SSD anchor decoding is appended to the graph, so every artifact (INT8 included) ends in the YOLO-style
rows the manifest's `detect` post-processing already reads: (cx, cy, w, h, score), normalised to [0, 1].
Normalised, because one INT8 output tensor holds both boxes and scores: pixel units would cost the scores
their precision.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "assets" / "models"
WHEEL = "mediapipe==0.10.14"
MEMBER = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
SIZE = 128
# face_detection_short_range.pbtxt: SsdAnchorsCalculator options (4 layers, strides 8,16,16,16, 2 anchors
# per layer, fixed anchor size) and TensorsToDetectionsCalculator (x/y/w/h scale 128, x before y).
STRIDES = [8, 16, 16, 16]


def anchors() -> np.ndarray:
    """Anchor centres (x, y), normalised, in the order the model's 896 rows come out."""
    out: list[tuple[float, float]] = []
    layer = 0
    while layer < len(STRIDES):
        stride, per_cell = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:
            per_cell += 2  # aspect ratio 1.0 plus the interpolated scale
            layer += 1
        cells = SIZE // stride
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.asarray(out, dtype=np.float32)


def fetch_tflite(tmp: Path) -> tuple[Path, str, str]:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), WHEEL], check=True)
    wheel = next(tmp.glob("mediapipe-*.whl"))
    target = tmp / Path(MEMBER).name
    with zipfile.ZipFile(wheel) as zf:
        target.write_bytes(zf.read(MEMBER))
    return target, wheel.name, sha256(wheel)


def convert(tflite: Path, out: Path) -> None:
    toolchain = Path.home() / ".cache" / "edgectl" / "toolchains" / "tflite" / "bin" / "python"
    subprocess.run([str(toolchain), "-m", "tf2onnx.convert", "--tflite", str(tflite), "--output", str(out),
                    "--opset", "13"], check=True, capture_output=True)


def append_decoder(path: Path) -> None:
    """regressors [1,896,16] + classificators [1,896,1] → detections [1,896,5] = cx, cy, w, h, score."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    consts = {"anchors": anchors()[None], "inv_size": np.asarray(1.0 / SIZE, dtype=np.float32),
              "s0": np.asarray([0], np.int64), "s2": np.asarray([2], np.int64), "s4": np.asarray([4], np.int64),
              "axis": np.asarray([2], np.int64)}
    g.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    g.node.extend([
        helper.make_node("Slice", ["regressors", "s0", "s2", "axis"], ["raw_xy"], name="decode_xy_slice"),
        helper.make_node("Slice", ["regressors", "s2", "s4", "axis"], ["raw_wh"], name="decode_wh_slice"),
        helper.make_node("Mul", ["raw_xy", "inv_size"], ["off_xy"], name="decode_xy_scale"),
        helper.make_node("Add", ["off_xy", "anchors"], ["xy"], name="decode_xy_anchor"),
        helper.make_node("Mul", ["raw_wh", "inv_size"], ["wh"], name="decode_wh_scale"),
        helper.make_node("Sigmoid", ["classificators"], ["score"], name="decode_score"),
        helper.make_node("Concat", ["xy", "wh", "score"], ["detections"], axis=2, name="decode_rows"),
    ])
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["batch", 896, 5]))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def dynamic_batch(path: Path) -> None:
    """tf2onnx keeps the .tflite's batch of 1; reshapes to [1, -1, n] become [0, -1, n] (0 copies the batch
    dimension), so cameras sharing this model can be batched."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    g = model.graph
    shapes = {n.input[1] for n in g.node if n.op_type == "Reshape"}
    for i, init in enumerate(g.initializer):
        value = numpy_helper.to_array(init)
        if init.name in shapes and value.ndim == 1 and len(value) == 3 and value[0] == 1:
            g.initializer[i].CopyFrom(numpy_helper.from_array(np.asarray([0, *value[1:]], np.int64), init.name))
    for vi in (*g.input, *g.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    onnx_path = OUT / "blazeface_short.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        tflite, wheel, wheel_sha = fetch_tflite(Path(tmp))
        tflite_sha = sha256(tflite)
        convert(tflite, onnx_path)
    append_decoder(onnx_path)
    dynamic_batch(onnx_path)
    (OUT / "face_labels.txt").write_text("face\n")
    provenance = {
        "model": onnx_path.name, "sha256": sha256(onnx_path), "bytes": onnx_path.stat().st_size,
        "architecture": "BlazeFace short-range (MediaPipe face detection), 128x128 RGB NHWC, input (x - 127.5) / "
                        "127.5, 896 SSD anchors; anchor decoding appended: output [1,896,5] = cx, cy, w, h, score "
                        "normalised to the input",
        "weights": f"{MEMBER} from the PyPI wheel {wheel} (sha256 {wheel_sha})",
        "tflite_sha256": tflite_sha, "licence": "Apache-2.0 (mediapipe)",
        "export": "tf2onnx 1.17 --tflite --opset 13 in the edgectl tflite toolchain; decoder appended and batch made "
                  "dynamic with onnx.helper",
        "labels": {"file": "face_labels.txt"}, "script": "scripts/export_detector.py",
    }
    (OUT / "PROVENANCE-blazeface.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))


if __name__ == "__main__":
    main()
