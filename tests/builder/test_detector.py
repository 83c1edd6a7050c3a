"""The real BlazeFace detector as MediaPipe ships it (.tflite, raw SSD outputs), built from its file and its
sidecar alone: tf2onnx in the toolchain, ssd_anchors decoding with keypoints in runtimes/, no graph surgery."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2

from runtimes.bundle import open_bundle
from runtimes.model import LoadedModel, golden_agreement, golden_failure
from runtimes.tasks import DetectAnswer
from tests.support.assets import DETECTOR


def _load(bundle: Path, target: str) -> LoadedModel:
    b = open_bundle(bundle, allow_unsigned=True)
    art = b.manifest.artifact(target)
    runtime = "openvino" if target.startswith("openvino") else "onnxruntime"
    return LoadedModel.load(b.manifest.preprocess, b.manifest.postprocess, art, [bundle / f for f in art.files],
                            runtime, {})


def _detect(model: LoadedModel, frame: object) -> DetectAnswer:
    outputs, tf = model.infer_frame(frame)  # type: ignore[arg-type]
    answer = model.post.decode(outputs, 0, model.size, tf, ["face"])
    assert isinstance(answer, DetectAnswer)
    return answer


def test_provenance_matches_the_committed_model() -> None:
    prov = json.loads((DETECTOR.parent / "PROVENANCE-models.json").read_text())[DETECTOR.name]
    assert prov["sha256"] == hashlib.sha256(DETECTOR.read_bytes()).hexdigest()
    assert "mediapipe-0.10.14" in prov["wheel"]


def test_detector_bundle_reports_box_agreement(face_bundle: Path) -> None:
    report = json.loads((face_bundle / "report.json").read_text())
    rows = {t["target"]: t for t in report["targets"]}
    manifest = open_bundle(face_bundle).manifest
    assert report["model"]["task"] == "detect" and manifest.postprocess.format == "ssd_anchors"  # type: ignore[union-attr]
    assert manifest.source.format == "tflite" and manifest.artifact("onnx-fp32").inputs[0].shape[0] == 1
    assert rows["onnx-fp32"]["agreement"] == {"box_match": 1.0, "box_match_iou30": 1.0}
    for target in ("onnx-int8", "openvino-int8"):
        assert rows[target]["status"] == "ok", rows[target]
        assert rows[target]["agreement"]["box_match"] >= 0.9
    if "tflite-int8" in rows:  # converts (NHWC input handled), and the gate says whether it is good enough
        assert rows["tflite-int8"]["status"] in ("ok", "rejected"), rows["tflite-int8"]


def test_every_artifact_passes_its_golden_check(face_bundle: Path) -> None:
    b = open_bundle(face_bundle, allow_unsigned=True)
    images, reference = b.golden()
    assert set(reference) == {"regressors", "classificators"}
    for target in ("onnx-fp32", "onnx-int8", "openvino-fp16", "openvino-int8"):
        model = _load(face_bundle, target)
        try:
            agreed = golden_agreement(model, images, reference)
        finally:
            model.close()
        assert golden_failure(agreed, b.manifest.tolerance(model.artifact.precision)) is None, (target, agreed)


def test_finds_the_astronauts_face_and_its_keypoints(face_bundle: Path, media: Path) -> None:
    frame = cv2.imread(str(media / "photos" / "astronaut.png"))
    model = _load(face_bundle, "onnx-int8")
    try:
        found = _detect(model, frame).detections
    finally:
        model.close()
    assert len(found) == 1 and found[0].score > 0.7
    x1, y1, x2, y2 = found[0].box
    # Her face is at about (170-260, 60-160) in the 512x512 photo.
    assert 140 < (x1 + x2) / 2 < 290 and 60 < (y1 + y2) / 2 < 200 and 50 < x2 - x1 < 160
    assert len(found[0].keypoints) == 6  # eyes, nose, mouth, ears: inside the face box
    assert all(x1 - 20 < x < x2 + 20 and y1 - 20 < y < y2 + 20 for x, y in found[0].keypoints)


def test_no_face_in_a_coffee_cup(face_bundle: Path, media: Path) -> None:
    frame = cv2.imread(str(media / "photos" / "coffee.png"))
    model = _load(face_bundle, "onnx-fp32")
    try:
        assert _detect(model, frame).detections == []
    finally:
        model.close()
