"""Each task's post-processing and agreement on small tensors whose answers are known."""

from __future__ import annotations

import json

import numpy as np
import pytest

from runtimes.errors import ProcessingError
from runtimes.geometry import IDENTITY, Transform
from runtimes.manifest import Manifest
from runtimes.tasks import ClassifySpec, RawSpec, SegmentSpec, parse_postprocess
from runtimes.tasks.formats import BoxesSpec, SsdAnchorsOptions, Yolov5Spec, Yolov8Spec, generate

SIZE = (100, 200)  # height, width of the model input


def test_yolov8_channels_first_as_ultralytics_exports() -> None:
    rows = np.zeros((1, 6, 3), np.float32)  # 4 box values + 2 classes, 3 candidates
    rows[0, :, 0] = [50, 40, 20, 10, 0.1, 0.9]
    rows[0, :, 1] = [52, 41, 20, 10, 0.1, 0.8]  # overlaps the first: suppressed
    rows[0, :, 2] = [150, 60, 10, 10, 0.7, 0.2]
    dets = Yolov8Spec(output="y").decode({"y": rows}, 0, SIZE, IDENTITY, ["cat", "dog"]).detections
    assert [(d.label, d.score) for d in dets] == [("dog", 0.9), ("cat", 0.7)]
    assert dets[0].box == [40.0, 35.0, 60.0, 45.0]


def test_yolov5_multiplies_objectness() -> None:
    rows = np.asarray([[[50, 50, 10, 10, 0.5, 0.2, 0.9], [10, 10, 4, 4, 0.1, 0.9, 0.1]]], np.float32)
    dets = Yolov5Spec(output="y", score_threshold=0.3).decode({"y": rows}, 0, SIZE, IDENTITY, []).detections
    assert len(dets) == 1 and dets[0].label == "1" and dets[0].score == pytest.approx(0.45)


def test_boxes_format_reads_tf_detection_api_outputs() -> None:
    outputs = {"boxes": np.asarray([[[0.1, 0.2, 0.5, 0.6], [0, 0, 1, 1]]], np.float32),  # y1 x1 y2 x2, normalised
               "scores": np.asarray([[0.9, 0.8]], np.float32), "classes": np.asarray([[3, 1]], np.float32),
               "count": np.asarray([1], np.float32)}
    spec = BoxesSpec(boxes="boxes", scores="scores", classes="classes", count="count", label_offset=-1)
    dets = spec.decode(outputs, 0, SIZE, Transform(0.5, 0.5), ["a", "b", "c"]).detections
    assert len(dets) == 1 and dets[0].label == "c"
    assert dets[0].box == pytest.approx([80.0, 20.0, 240.0, 100.0])  # back to a frame twice the input size


def test_ssd_anchors_match_mediapipe_counts() -> None:
    face = SsdAnchorsOptions(num_layers=4, min_scale=0.1484375, max_scale=0.75, input_size_height=128,
                             input_size_width=128, strides=[8, 16, 16, 16], aspect_ratios=[1.0], fixed_anchor_size=True)
    anchors = generate(face)
    assert anchors.shape == (896, 4)
    assert anchors[0].tolist() == [0.03125, 0.03125, 1.0, 1.0]  # (x, y, w, h) of the first 16x16 cell
    palm = face.model_copy(update={"input_size_height": 192, "input_size_width": 192})
    assert generate(palm).shape == (2016, 4)
    ssd = SsdAnchorsOptions(num_layers=6, min_scale=0.2, max_scale=0.95, input_size_height=300, input_size_width=300,
                            strides=[16, 32, 64, 128, 256, 512], aspect_ratios=[1.0, 2.0, 0.5, 3.0, 0.3333],
                            reduce_boxes_in_lowest_layer=True)
    assert generate(ssd).shape == (1917, 4)  # SSD MobileNet's well-known anchor count


def test_ssd_decode_with_keypoints() -> None:
    spec = parse_postprocess({
        "kind": "detect", "format": "ssd_anchors", "boxes": "r", "scores": "s",
        "anchors": {"num_layers": 1, "min_scale": 0.5, "max_scale": 0.5, "input_size_height": 100,
                    "input_size_width": 200, "strides": [100], "aspect_ratios": [1.0], "fixed_anchor_size": True,
                    "interpolated_scale_aspect_ratio": 0.0},
        "decode": {"num_classes": 1, "num_boxes": 2, "num_coords": 6, "keypoint_coord_offset": 4, "num_keypoints": 1,
                   "sigmoid_score": True, "reverse_output_order": True, "x_scale": 200, "y_scale": 100,
                   "w_scale": 200, "h_scale": 100, "min_score_thresh": 0.5}}, "test")
    raw = np.asarray([[[0, 0, 100, 50, 10, 0], [0, 0, 10, 10, 0, 0]]], np.float32)
    scores = np.asarray([[[4.0], [-4.0]]], np.float32)
    dets = spec.decode({"r": raw, "s": scores}, 0, SIZE, IDENTITY, ["face"]).detections
    assert len(dets) == 1 and dets[0].label == "face" and dets[0].score > 0.98
    assert dets[0].box == pytest.approx([0.0, 25.0, 100.0, 75.0])  # anchor (0.25, 0.5) of a 2x1 grid
    assert dets[0].keypoints == [pytest.approx([60.0, 50.0])]


def test_ssd_anchor_count_must_match_the_output() -> None:
    spec = parse_postprocess({"kind": "detect", "format": "ssd_anchors", "boxes": "r", "scores": "s",
                              "anchors": {"num_layers": 1, "min_scale": 0.5, "max_scale": 0.5, "input_size_height": 8,
                                          "input_size_width": 8, "strides": [8], "aspect_ratios": [1.0]},
                              "decode": {"num_classes": 1, "num_boxes": 5, "num_coords": 4}}, "test")
    with pytest.raises(ProcessingError, match="anchors"):
        spec.decode({"r": np.zeros((1, 5, 4)), "s": np.zeros((1, 5, 1))}, 0, (8, 8), IDENTITY, [])


def test_segment_one_channel_coverage_and_iou() -> None:
    mask = np.zeros((2, 1, 4, 4), np.float32)
    mask[:, 0, :2, :] = 0.9  # the top half is the person
    spec = SegmentSpec(output="m", threshold=0.5)
    answer = spec.decode({"m": mask}, 0, (4, 4), IDENTITY, ["person"])
    assert answer.coverage == {"background": 0.5, "person": 0.5}
    shifted = mask.copy()
    shifted[:, 0, 1, :] = 0.1  # a quarter of the person lost
    agreed = spec.agreement({"m": mask}, {"m": shifted}, (4, 4))
    assert agreed["mask_iou"] == pytest.approx(0.5) and agreed["pixel_agreement"] == pytest.approx(0.75)


def test_segment_class_logits_channels_last() -> None:
    logits = np.zeros((1, 2, 2, 3), np.float32)
    logits[0, 0, :, 2] = 5.0
    logits[0, 1, :, 1] = 5.0
    answer = SegmentSpec(output="m", channels="last", activation="softmax").decode(
        {"m": logits}, 0, (2, 2), IDENTITY, ["sky", "road", "car"])
    assert answer.coverage == {"road": 0.5, "car": 0.5}


def test_raw_summaries_and_agreement() -> None:
    a = np.linspace(-1, 1, 20, dtype=np.float32).reshape(2, 10)
    spec = RawSpec().with_outputs(["emb"])
    answer = spec.decode({"emb": a}, 1, SIZE, IDENTITY, [])
    assert answer.outputs[0].shape == [10] and answer.outputs[0].argmax == 9
    agreed = spec.agreement({"emb": a}, {"emb": a + 0.01}, SIZE)
    assert agreed["cosine"] > 0.999 and 30 < agreed["snr_db"] < 40


def test_classify_confident_top1_ignores_ambiguous_images() -> None:
    ref = np.log(np.asarray([[0.9, 0.05, 0.05]] * 10 + [[0.34, 0.33, 0.33]] * 10, np.float32))
    cand = ref.copy()
    cand[10:] = np.log(np.asarray([0.33, 0.34, 0.33], np.float32))  # the ambiguous ones flip
    agreed = ClassifySpec(output="y").agreement({"y": ref}, {"y": cand}, SIZE)
    assert agreed["top1"] == 0.5 and agreed["top1_confident"] == 1.0 and agreed["top5"] == 1.0


def test_outputs_are_chosen_by_name() -> None:
    with pytest.raises(ProcessingError, match="2 outputs"):
        ClassifySpec().with_outputs(["a", "b"])
    with pytest.raises(ProcessingError, match="no model output named 'c'"):
        ClassifySpec(output="c").with_outputs(["a", "b"])
    assert ClassifySpec(output="b").with_outputs(["a", "b"]).output == "b"


def test_bad_spec_names_the_key() -> None:
    with pytest.raises(ProcessingError, match="format"):
        parse_postprocess({"kind": "detect", "format": "yolov99"}, "--postprocess")
    with pytest.raises(ProcessingError, match="threshold"):
        parse_postprocess({"kind": "segment", "threshold": 2}, "--postprocess")


def test_schema_1_manifests_still_read() -> None:
    """Bundles built before tasks: softmax_topk, YOLO-style detect rows, top1_min tolerances, reference.npy."""
    doc = {"name": "old", "version": 1, "created": "2026-11-01", "task": "detect", "labels": ["face"],
           "source": {"filename": "m.onnx", "sha256": "0" * 64, "format": "onnx"},
           "preprocess": {"height": 8, "width": 8},
           "postprocess": {"kind": "detect", "box_units": "normalized", "score_threshold": 0.5},
           "artifacts": [{"target": "onnx-fp32", "runtime": "onnxruntime", "precision": "fp32", "files": ["a"],
                          "inputs": [{"name": "x", "shape": [1, 3, 8, 8]}],
                          "outputs": [{"name": "detections", "shape": [1, 4, 5]}]}],
           "golden": {"images": "i.npy", "reference": "r.npy", "count": 1,
                      "tolerances": {"int8": {"top1_min": 0.75, "top5_min": 0.85}}},
           "files": []}
    m = Manifest.model_validate(json.loads(json.dumps(doc)))
    assert isinstance(m.postprocess, Yolov8Spec) and m.postprocess.layout == "rows"
    assert m.postprocess.output == "detections" and m.golden.outputs == ["detections"]
    assert m.tolerance("int8").min == {"box_match": 0.75}
    doc["task"], doc["postprocess"] = "classify", {"kind": "softmax_topk", "top_k": 3}
    doc["golden"]["tolerances"] = {"int8": {"top1_min": 0.75, "top5_min": 0.85}}
    m = Manifest.model_validate(doc)
    assert isinstance(m.postprocess, ClassifySpec) and m.postprocess.top_k == 3
    assert m.tolerance("int8").min == {"top1": 0.75, "top5": 0.85}
