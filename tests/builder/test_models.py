"""The real models of our set, each built from its file and its sidecar alone (no per-model code): six models,
four tasks, three exporters (PyTorch, TFLite via tf2onnx, Paddle2ONNX). Each artifact is either accepted by its
task's gate or rejected with a reason; INT8 misses go through accuracy recovery first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.api import BuildRequest, build
from runtimes.bundle import open_bundle

pytestmark = pytest.mark.slow
MEASURE = {"classify": "top1_confident", "detect": "box_match", "segment": "mask_iou", "raw": "cosine"}


def _rows(bundle: Path) -> dict[str, dict[str, object]]:
    return {t["target"]: t for t in json.loads((bundle / "report.json").read_text())["targets"]}


@pytest.mark.parametrize("name", ["bundle", "face_bundle", "text_bundle", "orientation_bundle", "mesh_bundle",
                                  "reader_bundle"])
def test_every_model_builds_with_its_task(name: str, request: pytest.FixtureRequest) -> None:
    bundle: Path = request.getfixturevalue(name)
    manifest = open_bundle(bundle).manifest
    rows = _rows(bundle)
    key = MEASURE[manifest.task]
    for target in ("onnx-fp32", "openvino-fp16"):
        assert rows[target]["status"] == "ok", rows[target]
        assert rows[target]["agreement"][key] >= 0.97, rows[target]  # type: ignore[index]
    for row in rows.values():
        assert row["status"] in ("ok", "rejected"), row
        if row["status"] == "rejected":  # the reason names the measure and the number that missed
            assert "below" in str(row["reason"]), row
    # An INT8 artifact is accepted, or one that missed went through recovery and says what it tried (the
    # text reader's OpenVINO INT8 lands at cosine 0.967 against the raw gate's 0.98 with nncf 3.4).
    int8 = [r for t, r in rows.items() if t.endswith("int8")]
    assert any(r["status"] == "ok" or r.get("recovery") for r in int8), rows
    golden = manifest.golden
    assert golden.outputs == manifest.postprocess.output_names() and golden.reference.endswith(".npz")


def test_static_batch_and_nhwc_models_keep_their_shape(face_bundle: Path, mesh_bundle: Path) -> None:
    for bundle in (face_bundle, mesh_bundle):
        art = open_bundle(bundle).manifest.artifact("onnx-fp32")
        assert art.inputs[0].shape[0] == 1 and art.inputs[0].layout == "NHWC"


def test_multi_output_raw_model_keeps_every_output_by_name(mesh_bundle: Path) -> None:
    manifest = open_bundle(mesh_bundle).manifest
    assert manifest.postprocess.output_names() == ["conv2d_21", "conv2d_31"]
    if "tflite-int8" in {a.target for a in manifest.artifacts}:  # onnx2tf reorders the outputs: matched by value
        keys = [o.key for o in manifest.artifact("tflite-int8").outputs]
        assert sorted(keys) == ["conv2d_21", "conv2d_31"]


def test_dynamic_hw_models_take_their_sidecar_shape(text_bundle: Path, reader_bundle: Path) -> None:
    manifest = open_bundle(text_bundle).manifest
    assert (manifest.preprocess.height, manifest.preprocess.width) == (480, 640)
    assert manifest.artifact("onnx-fp32").inputs[0].shape == [-1, 3, 480, 640]
    reader = open_bundle(reader_bundle).manifest
    assert reader.artifact("onnx-fp32").inputs[0].shape == [-1, 3, 48, 320] and reader.task == "raw"


def test_int8_recovery_reports_layers_and_agreement(tmp_path: Path, media: Path) -> None:
    """The orientation classifier's OpenVINO INT8 misses a strict gate, and NNCF's accuracy control recovers it."""
    from tests.support.assets import TEXT_ORIENTATION

    summary = build(BuildRequest(model=TEXT_ORIENTATION, calib=media / "textlines_calib",
                                 val=media / "textlines_val", out=tmp_path / "out",
                                 targets="onnx-fp32,openvino-int8", min_agreement=0.995))
    row = {t["target"]: t for t in summary["targets"]}["openvino-int8"]
    recovery = row["recovery"]
    assert recovery is not None, row
    assert recovery["agreement_before"]["top1_confident"] < 0.995
    assert set(recovery) >= {"kept_float", "agreement_after", "latency_ms_before", "latency_ms_after", "seconds"}
    if row["status"] == "ok":
        assert recovery["agreement_after"]["top1_confident"] >= 0.995
    else:
        assert "kept in float" in row["reason"] or "no layer" in row["reason"]
