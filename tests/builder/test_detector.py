"""The real BlazeFace detector from mediapipe's wheel, built and checked like the classifier."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

from runtimes.bundle import open_bundle
from runtimes.manifest import default_tolerances
from runtimes.model import LoadedModel, golden_agreement, golden_failure
from runtimes.processing import detections
from tests.conftest import DETECTOR


def _load(bundle: Path, target: str) -> LoadedModel:
    b = open_bundle(bundle, allow_unsigned=True)
    art = b.manifest.artifact(target)
    runtime = "openvino" if target.startswith("openvino") else "onnxruntime"
    return LoadedModel.load(b.manifest.preprocess, b.manifest.postprocess, art, [bundle / f for f in art.files],
                            runtime, {})


def test_provenance_matches_the_committed_model() -> None:
    prov = json.loads((DETECTOR.parent / "PROVENANCE-blazeface.json").read_text())
    assert prov["sha256"] == hashlib.sha256(DETECTOR.read_bytes()).hexdigest()
    assert "mediapipe-0.10.14" in prov["weights"]


def test_detector_bundle_reports_box_agreement(face_bundle: Path) -> None:
    report = json.loads((face_bundle / "report.json").read_text())
    rows = {t["target"]: t for t in report["targets"]}
    assert report["model"]["task"] == "detect"
    assert rows["onnx-fp32"]["agreement"] == {"boxes": 1.0, "boxes_iou30": 1.0}
    for target in ("onnx-int8", "openvino-int8"):
        assert rows[target]["status"] == "ok", rows[target]
        assert rows[target]["agreement"]["boxes"] >= 0.9
    if "tflite-int8" in rows:  # converts (NHWC input handled), and the gate says whether it is good enough
        assert rows["tflite-int8"]["status"] in ("ok", "rejected"), rows["tflite-int8"]


def test_every_artifact_passes_its_golden_check(face_bundle: Path) -> None:
    b = open_bundle(face_bundle, allow_unsigned=True)
    images = np.load(face_bundle / b.manifest.golden.images)
    reference = np.load(face_bundle / b.manifest.golden.reference)
    for target in ("onnx-fp32", "onnx-int8", "openvino-fp16", "openvino-int8"):
        model = _load(face_bundle, target)
        try:
            agreed = golden_agreement(model, images, reference)
        finally:
            model.close()
        tol = default_tolerances()[model.artifact.precision]
        assert golden_failure(agreed, tol) is None, (target, agreed)


def test_finds_the_astronauts_face(face_bundle: Path, media: Path) -> None:
    frame = cv2.imread(str(media / "photos" / "astronaut.png"))
    model = _load(face_bundle, "onnx-int8")
    try:
        outputs, tf = model.infer_frame(frame)
        found = detections(outputs[0], model.post, model.pre, tf)
    finally:
        model.close()
    assert len(found) == 1 and found[0].score > 0.7
    x1, y1, x2, y2 = found[0].box
    # Her face is at about (170-260, 60-160) in the 512x512 photo.
    assert 140 < (x1 + x2) / 2 < 290 and 60 < (y1 + y2) / 2 < 200 and 50 < x2 - x1 < 160


def test_no_face_in_a_coffee_cup(face_bundle: Path, media: Path) -> None:
    # (Not the cat: BlazeFace gives Chelsea's face 0.6, a fair call.)
    frame = cv2.imread(str(media / "photos" / "coffee.png"))
    model = _load(face_bundle, "onnx-fp32")
    try:
        outputs, tf = model.infer_frame(frame)
        assert detections(outputs[0], model.post, model.pre, tf) == []
    finally:
        model.close()
