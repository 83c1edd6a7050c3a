"""Install footprint of the agent per runtime set (#16), beside the anchors' published footprints.

For each set, a fresh venv gets the wheel with that extra (`agent-onnxruntime`, `agent-openvino`,
`agent-litert`, `agent` = all): its site-packages size. Then `edge-agent run` from that venv on a private
mosquitto: RSS when idle (connected, no model), RSS serving the demo bundle on the demo video, and the time
from spawn to the first published result, cold (selection runs) and warm (the decision is cached).
Prints one JSON object; `bench/results-footprint.json` keeps the last run.

    .venv/bin/python bench/footprint.py [--sets onnxruntime,litert]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import psutil
from common import ROOT, broker, demo_bundle, home

from tests.support.broker import Broker
from tests.support.mqtt import Recorder

SETS = {"onnxruntime": "agent-onnxruntime", "openvino": "agent-openvino", "litert": "agent-litert",
        "all": "agent"}
# Published footprints of the tools a device would otherwise run (their docs, 2025-2026).
ANCHORS = {"greengrass_nucleus_mb": "> 400 with plugins (AWS docs: Java nucleus, 256 MB heap + plugins)",
           "azure_iot_edge_hub_mb": "300-550 (edgeAgent + edgeHub containers, Microsoft docs)"}
VIDEO = ROOT / ".cache" / "media" / "video_640x480.mp4"


def _size_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6, 1)


def _wheel(out: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return next(out.glob("edgectl-*.whl"))


def _venv(where: Path, wheel: Path, extra: str) -> tuple[Path, float]:
    venv.create(where, with_pip=True)
    site = next((where / "lib").glob("python3*/site-packages"))
    bare = _size_mb(site)
    started = time.monotonic()
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[{extra}]"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=where)
    print(f"footprint: {extra} installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return where / "bin", round(_size_mb(site) - bare, 1)


def _agent(bin_dir: Path, b: Broker, state: Path, device: str, serve: bool) -> subprocess.Popen[bytes]:
    from builder import keys

    key = state.parent / "trusted.pem"
    key.write_bytes(keys.load().public_pem)
    cmd = [str(bin_dir / "edge-agent"), "run", "--device-id", device, "--broker", b.url, "--state-dir", str(state),
           "--trusted-key", str(key), "--telemetry-interval", "2"]
    if serve:
        cmd += ["--bundle", str(demo_bundle()), "--source", str(VIDEO)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(cmd, cwd=state.parent, env=env, stdout=subprocess.DEVNULL,
                            stderr=(state.parent / f"{device}.log").open("ab"))


def _rss_mb(proc: subprocess.Popen[bytes]) -> float:
    return round(psutil.Process(proc.pid).memory_info().rss / 1e6, 1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def _idle(bin_dir: Path, b: Broker, work: Path, rec: Recorder, device: str) -> float:
    since = len(rec.messages)  # this set's agent only: every set has its own device id
    proc = _agent(bin_dir, b, work / "idle" / "state", device, serve=False)
    try:
        rec.wait_for(lambda t, d: t == f"edge/{device}/telemetry" and d.get("seq", 0) >= 3, 60, since=since)
        return _rss_mb(proc)
    finally:
        _stop(proc)


def _serving(bin_dir: Path, b: Broker, work: Path, rec: Recorder, device: str) -> tuple[float, float]:
    """Seconds from spawn to the first result, and RSS 10 s into serving."""
    start, since = time.monotonic(), len(rec.messages)
    proc = _agent(bin_dir, b, work / "serve" / "state", device, serve=True)
    try:
        rec.wait_for(lambda t, d: t == f"edge/{device}/results", 300, since=since)
        first = round(time.monotonic() - start, 2)
        rec.wait_for(lambda t, d: t == f"edge/{device}/telemetry" and d.get("seq", 0) >= 5, 60, since=since)
        return first, _rss_mb(proc)
    finally:
        _stop(proc)


def measure(name: str, extra: str, wheel: Path, b: Broker, rec: Recorder, tmp: Path) -> dict[str, object]:
    work = tmp / name
    for sub in ("idle", "serve"):
        (work / sub).mkdir(parents=True)
    bin_dir, size = _venv(work / "venv", wheel, extra)
    idle = _idle(bin_dir, b, work, rec, f"idle-{name}")
    cold, serving = _serving(bin_dir, b, work, rec, f"cold-{name}")
    warm, _ = _serving(bin_dir, b, work, rec, f"warm-{name}")  # same state dir: the cached decision
    served = [d for t, d, _ in rec.messages if t == f"edge/warm-{name}/status" and d.get("runtime")]
    return {"extra": extra, "site_packages_mb": size, "rss_idle_mb": idle, "rss_serving_mb": serving,
            "first_result_cold_s": cold, "first_result_warm_s": warm,
            "serving": served[-1]["runtime"] if served else None}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", default=",".join(SETS))
    args = parser.parse_args()
    home()
    demo_bundle()
    tmp = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    wheel = _wheel(tmp / "wheel")
    b = broker()
    rec = Recorder(b.port, ["edge/#"], client_id="footprint")
    try:
        sets = {name: measure(name, SETS[name], wheel, b, rec, tmp) for name in args.sets.split(",")}
    finally:
        rec.close()
        b.stop()
    print(json.dumps({"bench": "footprint", "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                      "sets": sets, "anchors": ANCHORS}, indent=2))


if __name__ == "__main__":
    main()
