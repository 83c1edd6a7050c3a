"""Shared fixtures: real photos and videos, an isolated EDGECTL_HOME, a real mosquitto, a real bundle."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker, free_port

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "assets" / "models" / "efficientnet_lite0.onnx"
LABELS = ROOT / "assets" / "models" / "imagenet_labels.txt"
DETECTOR = ROOT / "assets" / "models" / "blazeface_short.onnx"


def _load_media_script() -> object:
    spec = importlib.util.spec_from_file_location("make_media", ROOT / "scripts" / "make_media.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def media() -> Path:
    return _load_media_script().ensure_media()  # type: ignore[attr-defined,no-any-return]


@pytest.fixture(scope="session", autouse=True)
def edgectl_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keys and config of the tests never touch the user's; toolchains stay shared (they are big)."""
    home = tmp_path_factory.mktemp("edgectl-home")
    old = os.environ.get("EDGECTL_HOME")
    os.environ["EDGECTL_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("EDGECTL_HOME", None)
    else:
        os.environ["EDGECTL_HOME"] = old


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.fail("mosquitto is not installed: run the README's test command, which installs it")
    b = Broker(free_port(), tmp_path_factory.mktemp("mosquitto")).start()
    yield b
    b.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test alone, for tests that kill or restart it."""
    b = Broker(free_port(), tmp_path / "mosquitto").start()
    yield b
    b.kill()


@pytest.fixture
def recorder(own_broker: Broker) -> Iterator[object]:
    """Everything under edge/# on this test's own broker."""
    from tests.mqtt_helpers import Recorder

    rec = Recorder(own_broker.port, ["edge/#"])
    yield rec
    rec.close()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """A real bundle of every CPU target (TFLite included when its toolchain is installed)."""
    from builder.api import BuildRequest, build
    from fleet import toolchain

    targets = "onnx-fp32,onnx-int8,openvino-fp16,openvino-int8,tensorrt"
    if toolchain.stamp("tflite") is not None:
        targets += ",tflite-int8"
    out = tmp_path_factory.mktemp("bundle") / "efficientnet"
    build(BuildRequest(model=MODEL, calib=media / "calib", val=media / "val", out=out, targets=targets))
    return out


@pytest.fixture(scope="session")
def bundle_v2(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """Version 2 of the same model, ONNX FP32 only (~19 MB): what tests push."""
    from builder.api import BuildRequest, build

    out = tmp_path_factory.mktemp("v2") / "b"
    build(BuildRequest(model=MODEL, calib=media / "calib", val=media / "val", out=out, targets="onnx-fp32",
                       version=2))
    return out


@pytest.fixture(scope="session")
def face_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The real BlazeFace detector: FP32, both INT8 paths and FP16 (TFLite when its toolchain is there)."""
    from builder.api import BuildRequest, build
    from fleet import toolchain

    targets = "onnx-fp32,onnx-int8,openvino-fp16,openvino-int8"
    if toolchain.stamp("tflite") is not None:
        targets += ",tflite-int8"
    out = tmp_path_factory.mktemp("faces") / "blazeface"
    build(BuildRequest(model=DETECTOR, calib=media / "faces_calib", val=media / "faces_val", out=out,
                       targets=targets))
    return out
