"""Installs on the devices people own (#16): the wheel's dependency resolution for each board of the device
matrix (docs/agent.md), and the wheel itself installed into a fresh venv, serving with one runtime and
building a bundle. Real pip against the package index; nothing of the checkout is on the venv's path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder import keys
from tests.support.assets import MODEL, ROOT
from tests.support.broker import Broker
from tests.support.mqtt import Recorder

pytestmark = pytest.mark.slow
RUNTIMES = ("onnxruntime", "openvino", "ai-edge-litert")


@dataclass(frozen=True)
class Board:
    """A device of the matrix: what pip needs to resolve for it as that board would."""

    name: str
    machine: str  # x86_64 | aarch64
    glibc: int  # 2.<glibc>: the manylinux tags the board accepts go up to it
    python: str
    extras: str
    runtimes: tuple[str, ...]

    def platforms(self) -> list[str]:
        return [f"manylinux_2_{m}_{self.machine}" for m in range(17, self.glibc + 1)] + \
            [f"manylinux2014_{self.machine}"]


BOARDS = [
    Board("x86_64 Debian 12", "x86_64", 36, "3.11", "agent", RUNTIMES),
    Board("x86_64 Ubuntu 24.04", "x86_64", 39, "3.12", "agent", RUNTIMES),
    Board("x86_64 Debian 13", "x86_64", 41, "3.13", "agent", RUNTIMES),
    Board("Raspberry Pi OS bookworm arm64", "aarch64", 36, "3.11", "agent", RUNTIMES),
    # JetPack 6: Ubuntu 22.04 (glibc 2.35), and Python 3.10 is the one with TensorRT's bindings (from apt).
    Board("Jetson JetPack 6", "aarch64", 35, "3.10", "agent", RUNTIMES),
    Board("Raspberry Pi OS bookworm arm64, LiteRT only", "aarch64", 36, "3.11", "agent-litert", ("ai-edge-litert",)),
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _pip(sys.executable, "wheel", "--no-deps", "-w", str(out), str(ROOT))
    (found,) = out.glob("edgectl-*.whl")
    return found


def _pip(python: str | Path, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
                          capture_output=True, text=True, timeout=900, cwd=cwd)
    if done.returncode != 0:
        raise AssertionError(f"pip {' '.join(args[:3])}…: {done.stderr[-2000:]}")
    return done.stdout


@pytest.mark.parametrize("board", BOARDS, ids=[b.name for b in BOARDS])
def test_the_agent_resolves_to_wheels_on(board: Board, wheel: Path, tmp_path: Path) -> None:
    """`pip install --dry-run --only-binary=:all:` for the board's platform and Python: every dependency has
    a wheel there. pip evaluates environment markers against this interpreter, not the target, so
    version-conditional pure-Python lines (tomli below 3.11) are not what this checks."""
    report = tmp_path / "report.json"
    platforms = [arg for p in board.platforms() for arg in ("--platform", p)]
    _pip(sys.executable, "install", "--dry-run", "--ignore-installed", "--only-binary=:all:", *platforms,
         "--python-version", board.python, "--implementation", "cp", "--target", str(tmp_path / "t"),
         "--report", str(report), f"{wheel}[{board.extras}]")
    names = {i["metadata"]["name"].lower() for i in json.loads(report.read_text())["install"]}
    assert set(board.runtimes) <= names, names
    assert not set(RUNTIMES) - set(board.runtimes) & names, names


@pytest.fixture(scope="module")
def fresh(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel and one runtime (ONNX Runtime), as a device that has only that one."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where / "v", with_pip=True)
    _pip(where / "v" / "bin" / "python", "install", f"{wheel}[agent-onnxruntime]", cwd=where)
    return where / "v" / "bin"


def _run(exe: Path, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["EDGECTL_HOME"] = str(cwd / "home")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def test_the_wheel_serves_with_one_runtime(fresh: Path, bundle: Path, own_broker: Broker, recorder: Recorder,
                                           media: Path, tmp_path: Path) -> None:
    where = _run(fresh / "python", "-c", "import agent; print(agent.__file__)", cwd=tmp_path)
    assert str(fresh.parent) in where.stdout, where  # the wheel's copy, not the checkout's
    probe = json.loads(_run(fresh / "edge-agent", "probe", "--json", cwd=tmp_path).stdout)
    assert "version" in probe["runtimes"]["onnxruntime"]
    assert "unavailable" in probe["runtimes"]["openvino"] and "unavailable" in probe["runtimes"]["tflite"]
    key = tmp_path / "trusted.pem"
    key.write_bytes(keys.load().public_pem)
    chosen = _run(fresh / "edge-agent", "select", str(bundle), "--budget", "2", "--trusted-key", str(key),
                  "--json", cwd=tmp_path)
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["selected"]["runtime"] == "onnxruntime"
    installed = _run(fresh / "edge-agent", "install", "--root", str(tmp_path / "root"), cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert list((tmp_path / "root").rglob("edge-agent.service")), installed.stdout
    _serves(fresh, bundle, key, own_broker, recorder, media, tmp_path)


def _serves(fresh: Path, bundle: Path, key: Path, broker: Broker, recorder: Recorder, media: Path,
            tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [str(fresh / "edge-agent"), "run", "--device-id", "wheel", "--broker", broker.url, "--state-dir",
           str(tmp_path / "state"), "--source", str(media / "video_640x480.mp4"), "--bundle", str(bundle),
           "--trusted-key", str(key), "--telemetry-interval", "1"]
    with (tmp_path / "agent.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        got = recorder.wait_for(lambda t, d: t == "edge/wheel/results", 120)
        assert got["top"], got
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_wheel_builds_a_bundle(fresh: Path, wheel: Path, media: Path, tmp_path: Path) -> None:
    _pip(fresh / "python", "install", f"{wheel}[builder]", cwd=tmp_path)
    out = tmp_path / "bundle"
    built = _run(fresh / "edgectl", "build", str(MODEL), "--calib", str(media / "calib"), "--val",
                 str(media / "val"), "--out", str(out), "--targets", "onnx-fp32", "--json", cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    assert (out / "manifest.json").exists()
