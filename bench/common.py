"""Helpers shared by the benchmarks: a private mosquitto, the demo bundle, a recorder."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support.broker import Broker, free_port  # noqa: E402


def broker() -> Broker:
    return Broker(free_port(), Path(tempfile.mkdtemp(prefix="bench-mosq-"))).start()


def demo_bundle(version: int = 1, targets: str = "all") -> Path:
    """out/demo-bundle when the demo made it, else a fresh build (v2: ONNX FP32 + INT8, ~24 MB)."""
    name = "demo-bundle" if version == 1 else f"bench-bundle-v{version}"
    out = ROOT / "out" / name
    if (out / "manifest.json").is_file():
        return out
    from builder.api import BuildRequest, build
    from scripts.make_media import ensure_media

    media = ensure_media()
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the benchmark's one JSON object
        build(BuildRequest(model=ROOT / "assets/models/efficientnet_lite0.onnx", calib=media / "calib",
                           val=media / "val", out=out, targets=targets, version=version, force=True))
    return out


def home() -> None:
    os.environ.setdefault("EDGECTL_HOME", str(ROOT / ".cache" / "demo-home"))


def agent(b: Broker, bundle: Path, source: Path | str | None, state: Path, device: str, *extra: str,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    from builder import keys

    key = state.parent / "trusted.pem"
    state.parent.mkdir(parents=True, exist_ok=True)
    key.write_bytes(keys.load().public_pem)
    cmd = [sys.executable, "-m", "agent", "run", "--device-id", device, "--broker", b.url, "--bundle", str(bundle),
           *(["--source", str(source)] if source is not None else []), "--state-dir", str(state),
           "--trusted-key", str(key), *extra]  # no source: the cameras come from --config
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=(state.parent / f"{device}.log").open("ab"))
