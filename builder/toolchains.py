"""Isolated converter environments. onnx2tf pins tensorflow and numpy versions that clash with the
agent stack, so it lives in its own venv and the builder runs it as a subprocess.

Nothing is installed behind the user's back: `edgectl toolchain install NAME` is the only way in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet import paths

from .errors import ToolchainFailed, ToolchainMissing


@dataclass(frozen=True)
class Toolchain:
    name: str
    packages: tuple[str, ...]
    purpose: str


TOOLCHAINS: dict[str, Toolchain] = {
    "tflite": Toolchain(
        "tflite",
        # onnx2tf 1.29.x is the last line for Python 3.11; it pins tensorflow 2.19 and numpy 1.26.
        ("onnx2tf==1.29.24", "tf2onnx==1.17.0"),
        "ONNX → TFLite full-INT8 (onnx2tf + TFLiteConverter); Keras/SavedModel/TFLite → ONNX (tf2onnx)",
    ),
}


def lookup(name: str) -> Toolchain:
    try:
        return TOOLCHAINS[name]
    except KeyError as exc:
        raise ToolchainMissing(f"unknown toolchain {name!r}; known: {', '.join(TOOLCHAINS)}") from exc


def env_dir(name: str) -> Path:
    return paths.toolchains_dir() / name


def stamp(name: str) -> dict[str, object] | None:
    path = env_dir(name) / "edgectl-toolchain.json"
    try:
        data: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("packages") == list(lookup(name).packages) else None


def python(name: str) -> Path:
    """The interpreter of an installed toolchain, or a ToolchainMissing that says how to install it."""
    if stamp(name) is None:
        raise ToolchainMissing(f"toolchain {name!r} is not installed at {env_dir(name)}; "
                               f"run `edgectl toolchain install {name}`")
    return env_dir(name) / "bin" / "python"


def install(name: str, on_line: Callable[[str], None] = lambda _: None) -> Path:
    """Create the venv and pip-install the pinned packages; idempotent. Streams pip's lines to on_line."""
    chain = lookup(name)
    if stamp(name) is not None:
        return env_dir(name)
    target = env_dir(name)
    _run([sys.executable, "-m", "venv", "--clear", str(target)], on_line)
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off"]
    _run([*pip, "--upgrade", "pip"], on_line)
    _run([*pip, *chain.packages], on_line)
    (target / "edgectl-toolchain.json").write_text(json.dumps({"packages": list(chain.packages)}))
    return target


def _run(cmd: list[str], on_line: Callable[[str], None]) -> None:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    for line in proc.stdout or []:
        tail = [*tail[-20:], line.rstrip()]
        on_line(line.rstrip())
    if proc.wait() != 0:
        raise ToolchainFailed(f"{' '.join(cmd[:4])}… failed (exit {proc.returncode}):\n" + "\n".join(tail))
