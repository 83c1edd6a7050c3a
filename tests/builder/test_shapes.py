"""Models as other exporters make them: a static batch of 1, NHWC input, dynamic height and width, several
outputs, several inputs, a YOLO head, a custom op; and the builder's one-line errors for each misfit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.api import BuildRequest, build
from builder.errors import BuildFailed, CalibrationError, ModelInputError
from edgectl.app import app
from runtimes.bundle import open_bundle
from tests.support.assets import MODELS
from tests.support.onnx_models import small_cnn, yolo_head

runner = CliRunner()
CPU = "onnx-fp32,onnx-int8,openvino-fp16,openvino-int8"


def _build(model: Path, media: Path, out: Path, **extra: object) -> dict[str, object]:
    return build(BuildRequest(model=model, calib=media / "calib", val=media / "val", out=out, **extra))  # type: ignore[arg-type]


def test_static_batch_of_one_everywhere(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "b1.onnx", batch=1)
    summary = _build(model, media, tmp_path / "out", targets=CPU, min_agreement=0.0, min_top5=0.0)
    statuses = {t["target"]: t["status"] for t in summary["targets"]}  # type: ignore[index,union-attr]
    assert all(s == "ok" for s in statuses.values()), summary
    manifest = open_bundle(tmp_path / "out").manifest
    assert all(a.inputs[0].shape[0] == 1 for a in manifest.artifacts)


def test_nhwc_input_and_a_second_output_read_by_name(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "nhwc.onnx", nhwc=True, two_outputs=True)
    with pytest.raises(ModelInputError, match=r"2 outputs \(scores, f\)"):
        _build(model, media, tmp_path / "a")
    _build(model, media, tmp_path / "b", targets="onnx-fp32,openvino-fp16", postprocess='{"output": "scores"}')
    manifest = open_bundle(tmp_path / "b").manifest
    assert manifest.artifact("onnx-fp32").inputs[0].layout == "NHWC"
    assert manifest.postprocess.output_names() == ["scores"] and len(manifest.labels) == 10


def test_dynamic_height_and_width_need_a_shape(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "dyn.onnx", height="H", width="W")
    with pytest.raises(ModelInputError, match=r"--input-shape image=1,3,224,224"):
        _build(model, media, tmp_path / "a")
    with pytest.raises(ModelInputError, match="only the batch may stay -1"):
        _build(model, media, tmp_path / "b", input_shapes=["image=-1,3,-1,64"])
    _build(model, media, tmp_path / "c", targets="onnx-fp32,openvino-fp16", input_shapes=["image=-1,3,80,96"])
    manifest = open_bundle(tmp_path / "c").manifest
    assert (manifest.preprocess.height, manifest.preprocess.width) == (80, 96)
    assert manifest.artifact("onnx-fp32").inputs[0].shape == [-1, 3, 80, 96]


def test_several_inputs_are_named_in_the_error(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "two.onnx", two_inputs=True)
    for flag in (None, "image"):
        with pytest.raises(ModelInputError, match=r"2 inputs \(image, mask\)"):
            _build(model, media, tmp_path / "out", input_name=flag)
    with pytest.raises(ModelInputError, match="--input 'a': no such input"):
        _build(model, media, tmp_path / "out", input_name="a")


def test_yolov8_head_builds_and_gates_on_boxes(tmp_path: Path, media: Path) -> None:
    model = yolo_head(tmp_path / "yolo.onnx")
    with pytest.raises(ModelInputError, match="detect needs a format"):
        _build(model, media, tmp_path / "a", task="detect")
    post = json.dumps({"kind": "detect", "format": "yolov8", "score_threshold": 0.6})
    summary = _build(model, media, tmp_path / "b", targets="onnx-fp32,openvino-fp16,onnx-int8", postprocess=post,
                     preprocess='{"resize": "letterbox"}', recovery_budget_s=0)
    rows = {t["target"]: t for t in summary["targets"]}  # type: ignore[union-attr]
    assert rows["onnx-fp32"]["agreement"] == {"box_match": 1.0, "box_match_iou30": 1.0}
    assert rows["onnx-int8"]["status"] in ("ok", "rejected") and "box_match" in rows["onnx-int8"]["agreement"]


def test_a_build_with_no_artifact_signs_nothing(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "m.onnx")
    with pytest.raises(BuildFailed, match="no artifact passed"):
        _build(model, media, tmp_path / "out", targets="onnx-int8", min_agreement=1.01, recovery_budget_s=0)
    assert not (tmp_path / "out").exists()


def test_too_few_validation_images_is_an_error(tmp_path: Path, media: Path) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted((media / "calib").iterdir())[:3]:
        (few / p.name).write_bytes(p.read_bytes())
    with pytest.raises(CalibrationError, match="at least 10 are needed"):
        build(BuildRequest(model=small_cnn(tmp_path / "m.onnx"), calib=few, out=tmp_path / "out"))


@pytest.mark.toolchain
def test_tflite_custom_op_is_one_line(tmp_path: Path, media: Path) -> None:
    result = runner.invoke(app, ["build", str(MODELS / "selfie_segmentation.tflite"), "--calib",
                                 str(media / "faces_calib"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0, result.output
    assert "custom op Convolution2DTransposeBias" in result.output and "selfie_segmentation.tflite" in result.output


def test_cli_errors_are_one_line(tmp_path: Path, media: Path) -> None:
    model = small_cnn(tmp_path / "two.onnx", two_inputs=True)
    result = runner.invoke(app, ["build", str(model), "--calib", str(media / "calib"), "--out", str(tmp_path / "o"),
                                 "--input", "a"])
    assert result.exit_code == 2 and "Traceback" not in result.output and "no such input" in result.output
    result = runner.invoke(app, ["build", str(small_cnn(tmp_path / "m.onnx")), "--calib", str(media / "calib"),
                                 "--out", str(tmp_path / "o"), "--input-shape", "image=1,3,x"])
    assert result.exit_code == 2 and "--input-shape" in result.output
    result = runner.invoke(app, ["build", str(small_cnn(tmp_path / "m.onnx")), "--calib", str(media / "calib"),
                                 "--out", str(tmp_path / "o"), "--postprocess", '{"kind": "segment", "threshold": 5}'])
    assert result.exit_code == 2 and "threshold" in result.output and "Traceback" not in result.output
