"""`edgectl build` end to end on the real model, each artifact round-tripped through its own runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from builder import toolchains as toolchain
from builder.api import BuildRequest, build
from builder.errors import CalibrationError, ModelInputError, OutputError
from builder.targets import TARGETS
from runtimes.bundle import open_bundle
from runtimes.model import LoadedModel, golden_agreement, golden_failure
from tests.support.assets import MODEL
from tests.support.onnx_models import small_cnn

NO_TFLITE = "the TFLite toolchain is not installed (the README's test command installs it)"


def test_bundle_has_every_cpu_target_and_a_report(bundle: Path) -> None:
    report = json.loads((bundle / "report.json").read_text())
    statuses = {t["target"]: t["status"] for t in report["targets"]}
    expected = {"onnx-fp32", "onnx-int8", "openvino-fp16", "openvino-int8", "tensorrt"}
    assert expected <= set(statuses)
    assert all(s == "ok" for s in statuses.values()), report["targets"]
    assert "<svg" in (bundle / "report.html").read_text()


@pytest.mark.parametrize("target", ["onnx-fp32", "onnx-int8", "openvino-fp16", "openvino-int8", "tflite-int8"])
def test_artifact_round_trip_through_its_runtime(bundle: Path, target: str) -> None:
    b = open_bundle(bundle)
    if target == "tflite-int8" and toolchain.stamp("tflite") is None:
        pytest.skip(NO_TFLITE)
    art = b.manifest.artifact(target)
    check = TARGETS[target]
    model = LoadedModel.load(b.manifest.preprocess, b.manifest.postprocess, art, b.artifact_files(art),
                             check.check_runtime, check.check_options)
    images, reference = b.golden()
    agreement = golden_agreement(model, images, reference)
    assert golden_failure(agreement, b.manifest.tolerance(art.precision)) is None, agreement


def test_int8_agreement_meets_the_goal(bundle: Path) -> None:
    report = json.loads((bundle / "report.json").read_text())
    for row in report["targets"]:
        if row["target"] in ("onnx-int8", "openvino-int8", "tflite-int8"):
            assert row["agreement"]["top1"] >= 0.92 and row["agreement"]["top5"] >= 0.98, row


def test_tensorrt_recipe_carries_both_precisions(bundle: Path) -> None:
    recipe = json.loads((bundle / "tensorrt" / "recipe.json").read_text())
    assert set(recipe["onnx"]) == {"fp16", "int8"}
    assert recipe["input_shape"] == [1, 3, 224, 224]
    assert "l4t" in recipe["cache_key_fields"]


def test_golden_vectors_are_real_images(bundle: Path) -> None:
    images = np.load(bundle / "golden" / "images.npy")
    assert images.dtype == np.uint8 and images.shape[1:] == (224, 224, 3)
    assert images.std() > 20  # photos, not blanks


def test_unseen_architecture_and_input_size_builds(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "cnn.onnx", height=96, width=128)
    summary = build(BuildRequest(model=model, calib=media / "calib", val=media / "val", out=tmp_path / "out",
                                 targets="onnx-fp32,onnx-int8,openvino-fp16"))
    statuses = {t["target"]: t["status"] for t in summary["targets"]}
    assert statuses["onnx-fp32"] == "ok" and statuses["openvino-fp16"] == "ok"
    assert statuses["onnx-int8"] in ("ok", "rejected")
    manifest = open_bundle(tmp_path / "out").manifest
    assert (manifest.preprocess.height, manifest.preprocess.width) == (96, 128)
    assert len(manifest.labels) == 10


@pytest.mark.toolchain
def test_unsupported_op_fails_one_target_only(tmp_path: Path, media: Path) -> None:
    if toolchain.stamp("tflite") is None:
        pytest.skip(NO_TFLITE)
    model = small_cnn(tmp_path / "contrib.onnx", extra_op="QuickGelu")
    summary = build(BuildRequest(model=model, calib=media / "calib", val=media / "val", out=tmp_path / "out",
                                 targets="onnx-fp32,tflite-int8"))
    statuses = {t["target"]: t for t in summary["targets"]}
    assert statuses["onnx-fp32"]["status"] == "ok"
    assert statuses["tflite-int8"]["status"] == "failed" and statuses["tflite-int8"]["reason"]


def test_not_a_model_names_the_file(tmp_path: Path, media: Path) -> None:
    bad = tmp_path / "notes.onnx"
    bad.write_text("hello")
    with pytest.raises(ModelInputError, match=r"notes\.onnx"):
        build(BuildRequest(model=bad, calib=media / "calib", out=tmp_path / "out"))


def test_several_inputs_need_input_flag(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "two.onnx", two_inputs=True)
    with pytest.raises(ModelInputError, match="--input"):
        build(BuildRequest(model=model, calib=media / "calib", out=tmp_path / "out"))


def test_empty_calibration_set(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CalibrationError, match="empty"):
        build(BuildRequest(model=MODEL, calib=tmp_path / "empty", out=tmp_path / "out"))


def test_overlapping_calibration_and_validation(tmp_path: Path, media: Path) -> None:
    with pytest.raises(CalibrationError, match="overlap"):
        build(BuildRequest(model=MODEL, calib=media / "calib", val=media / "calib", out=tmp_path / "out"))


def test_output_not_empty_without_force(tmp_path: Path, media: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(OutputError, match="--force"):
        build(BuildRequest(model=MODEL, calib=media / "calib", out=tmp_path / "out"))
    assert (tmp_path / "out" / "keep.txt").exists()


def test_calibration_from_video(tmp_path: Path, media: Path) -> None:
    summary = build(BuildRequest(model=MODEL, calib=media / "video_640x480.mp4", out=tmp_path / "out",
                                 targets="onnx-fp32"))
    assert summary["targets"][0]["status"] == "ok"
