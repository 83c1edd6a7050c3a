"""Every input format the builder accepts, each a real (small) model made here."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from builder import toolchains as toolchain
from builder.api import BuildRequest, build
from builder.inputs import detect_format
from runtimes.bundle import open_bundle

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if toolchain.stamp("tflite") is None:
        pytest.skip("the TFLite toolchain is not installed (the README's test command installs it)")
    out = tmp_path_factory.mktemp("tf")
    subprocess.run([str(toolchain.python("tflite")), str(HERE / "make_tf_models.py"), str(out)], check=True,
                   capture_output=True)
    return out


@pytest.mark.toolchain
@pytest.mark.parametrize(("name", "fmt"), [("saved", "savedmodel"), ("model.h5", "keras"),
                                           ("model.tflite", "tflite")])
def test_tensorflow_inputs_build(tf_models: Path, media: Path, tmp_path: Path, name: str, fmt: str) -> None:
    model = tf_models / name
    assert detect_format(model) == fmt
    summary = build(BuildRequest(model=model, calib=media / "calib", val=media / "val", out=tmp_path / "b",
                                 targets="onnx-fp32"))
    assert summary["targets"][0]["status"] == "ok", summary
    manifest = open_bundle(tmp_path / "b").manifest
    assert manifest.source.format == fmt
    assert (manifest.preprocess.height, manifest.preprocess.width) == (64, 64)
    assert manifest.artifacts[0].inputs[0].layout == "NHWC"


def test_pytorch_exported_program(media: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed here (the builder needs it only for .pt2)")
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    program = torch.export.export(model, (torch.zeros(1, 3, 48, 48),))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    assert detect_format(tmp_path / "m.pt2") == "pytorch"
    summary = build(BuildRequest(model=tmp_path / "m.pt2", calib=media / "calib", val=media / "val",
                                 out=tmp_path / "b", targets="onnx-fp32"))
    assert summary["targets"][0]["status"] == "ok", summary
