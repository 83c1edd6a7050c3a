"""Shared fixtures: real photos and videos, an isolated EDGECTL_HOME, a real mosquitto, a real bundle."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.assets import (
    DETECTOR,
    FACE_MESH,
    MODEL,
    ROOT,
    TEXT_DETECTOR,
    TEXT_ORIENTATION,
    TEXT_READER,
)
from tests.support.broker import Broker, free_port

pytest_plugins = ["tests.support.durations"]

# The tests' builds share one cache across runs and clones (the key holds the code's own digest, so a change to
# the builder is a miss): a second run builds its session bundles in seconds. EDGECTL_HOME is per session, so
# the cache's default under it would always be cold.
os.environ.setdefault("EDGECTL_BUILD_CACHE", str(Path.home() / ".cache" / "edgectl" / "test-build"))


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


@pytest.fixture(scope="session")
def selection_pool(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The session's selection decisions, for agents of tests that do not test selection (support/warm.py)."""
    from tests.support.warm import SelectionPool

    return SelectionPool(tmp_path_factory.mktemp("selection-pool"))


@pytest.fixture(scope="module", autouse=True)
def warm_devices(request: pytest.FixtureRequest, selection_pool: object) -> Iterator[None]:
    """Agents start warm unless the module is marked `cold_devices` (autouse: before the module's own fixtures)."""
    from tests.support import warm

    cold = any(m.name == "cold_devices" for m in request.node.iter_markers())
    warm.activate(None if cold else selection_pool)  # type: ignore[arg-type]
    yield
    warm.activate(None)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test alone, for tests that kill or restart it."""
    b = Broker(free_port(), tmp_path / "mosquitto").start()
    yield b
    b.kill()


@pytest.fixture
def recorder(own_broker: Broker) -> Iterator[object]:
    """Everything under edge/# on this test's own broker."""
    from tests.support.mqtt import Recorder

    rec = Recorder(own_broker.port, ["edge/#"])
    yield rec
    rec.close()


def _build(out: Path, model: Path, media: Path, data: str, targets: str, version: int = 1,
           recovery_budget_s: float = 240.0) -> Path:
    """A real signed bundle; `data` names the calibration and validation photo folders (calib/val, faces_…).
    Each model is built from its file and its sidecar alone, as a user would."""
    from builder.api import BuildRequest, build

    prefix = f"{data}_" if data else ""
    build(BuildRequest(model=model, calib=media / f"{prefix}calib", val=media / f"{prefix}val", out=out,
                       targets=targets, version=version, recovery_budget_s=recovery_budget_s))
    return out


def _with_tflite(targets: str) -> str:
    """TFLite joins the CPU targets when its toolchain is installed (the test command installs it)."""
    from builder import toolchains as toolchain

    return targets + ",tflite-int8" if toolchain.stamp("tflite") is not None else targets


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """A real bundle of every CPU target (TFLite included when its toolchain is installed)."""
    targets = _with_tflite("onnx-fp32,onnx-int8,openvino-fp16,openvino-int8,tensorrt")
    return _build(tmp_path_factory.mktemp("bundle") / "efficientnet", MODEL, media, "", targets)


@pytest.fixture(scope="session")
def bundle_v2(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """Version 2 of the same model, ONNX FP32 only (~19 MB): what tests push."""
    return _build(tmp_path_factory.mktemp("v2") / "b", MODEL, media, "", "onnx-fp32", version=2)


@pytest.fixture(scope="session")
def face_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The real BlazeFace detector: FP32, both INT8 paths and FP16 (TFLite when its toolchain is there)."""
    targets = _with_tflite("onnx-fp32,onnx-int8,openvino-fp16,openvino-int8")
    return _build(tmp_path_factory.mktemp("faces") / "blazeface", DETECTOR, media, "faces", targets)


@pytest.fixture(scope="session")
def text_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The PP-OCRv4 text detector (segment, dynamic H/W fixed by its sidecar's input_shape)."""
    targets = "onnx-fp32,onnx-int8,openvino-fp16,openvino-int8"
    return _build(tmp_path_factory.mktemp("text") / "ppocr-det", TEXT_DETECTOR, media, "text", targets,
                  recovery_budget_s=60)


@pytest.fixture(scope="session")
def orientation_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The PP-OCR text-line orientation classifier (opset 11, ends in a softmax)."""
    targets = _with_tflite("onnx-fp32,onnx-int8,openvino-fp16,openvino-int8")
    return _build(tmp_path_factory.mktemp("orient") / "ppocr-cls", TEXT_ORIENTATION, media, "textlines", targets)


@pytest.fixture(scope="session")
def mesh_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """MediaPipe's face mesh (raw: two outputs, matched by name and layout on every artifact)."""
    targets = _with_tflite("onnx-fp32,onnx-int8,openvino-fp16,openvino-int8")
    return _build(tmp_path_factory.mktemp("mesh") / "face-mesh", FACE_MESH, media, "facecrops", targets)


@pytest.fixture(scope="session")
def reader_bundle(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """The PP-OCRv4 text recogniser (raw; its dynamic width fixed by the sidecar)."""
    return _build(tmp_path_factory.mktemp("reader") / "ppocr-rec", TEXT_READER, media, "textlines",
                  "onnx-fp32,openvino-fp16,openvino-int8", recovery_budget_s=60)


@pytest.fixture(scope="session")
def face_bundle_v2(tmp_path_factory: pytest.TempPathFactory, media: Path) -> Path:
    """Version 2 of the detector, ONNX FP32 only: what a named-model push sends."""
    return _build(tmp_path_factory.mktemp("faces-v2") / "b", DETECTOR, media, "faces", "onnx-fp32", version=2)
