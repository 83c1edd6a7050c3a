"""The fleet on each broker this machine has (Mosquitto, NATS, RabbitMQ; single nodes on loopback, started
here on free ports), and failover between two Mosquitto nodes; prints one JSON object.

Per broker, with an agent at the default 10 s telemetry interval: `edgectl status --json` wall time (a fresh
process) and whether it saw the device, five runs; push → committed for the bench bundle through retained
chunks, and through HTTP (a real nginx when installed, else `edgectl bundles serve`). Failover: the agent's
node is killed; seconds until its telemetry flows through the other node, until `edgectl status` given both
URLs shows it online, and telemetry sequence numbers lost.

    .venv/bin/python bench/brokers.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import ROOT, agent, broker, demo_bundle, home

from tests.support.broker import Broker, free_port
from tests.support.interop import NatsBroker, RabbitBroker
from tests.support.mqtt import Recorder
from tests.support.web import Nginx, nginx_binary

ENV = {"EDGE_AGENT__THRESHOLDS__SOAK_S": "2", "EDGE_AGENT__SELECTION_BUDGET_S": "2"}
EDGECTL = str(Path(sys.executable).parent / "edgectl")


def edgectl(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run([EDGECTL, *args], capture_output=True, text=True, check=False, cwd=ROOT)
    return time.monotonic() - started, proc


def status_runs(urls: list[str], device: str, runs: int = 5) -> dict[str, Any]:
    walls, seen = [], 0
    for _ in range(runs):
        wall, proc = edgectl("status", *[a for u in urls for a in ("--broker", u)], "--json")
        walls.append(round(wall, 2))
        rows = {r["device"]: r for r in json.loads(proc.stdout or "[]")}
        seen += rows.get(device, {}).get("state") == "online"
    return {"wall_s": walls, "seen": f"{seen}/{runs}"}


def push(url: str, bundle: Path, device: str, *extra: str) -> dict[str, Any]:
    wall, proc = edgectl("push", str(bundle), "--device", device, "--broker", url, "--timeout", "180", "--json",
                         *extra)
    result = json.loads(proc.stdout or "[{}]")[0]
    return {"result": result.get("result"), "reason": result.get("reason"), "wall_s": round(wall, 1)}


def http_server(site: Path, work: Path) -> tuple[str, Any]:
    if nginx_binary():
        server = Nginx(site, work).start()
        return server.url, server.stop
    port = free_port()
    proc = subprocess.Popen([EDGECTL, "bundles", "serve", str(site), "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    return f"http://127.0.0.1:{port}", proc.kill


def one_broker(name: str, url: str, port: int, v1: Path, v2: Path, media: Path, work: Path) -> dict[str, Any]:
    device = f"b-{name}"
    rec = Recorder(port, ["edge/#"], f"rec-{name}")
    proc = agent(Broker(port, work), v1, media / "video_640x480.mp4", work / "state", device, env=ENV)
    try:
        rec.wait_for(lambda t, d: t == f"edge/{device}/status" and d.get("state") == "online", 180)
        out: dict[str, Any] = {"status": status_runs([url], device)}
        out["push_chunks"] = push(url, v2, device)
        site = work / "site"
        site.mkdir()
        base, stop = http_server(site, work / "http")
        try:
            out["push_http"] = push(url, v1, device, "--http", base, "--http-dir", str(site), "--force")
        finally:
            stop()
        return out
    finally:
        proc.kill()
        rec.close()


def failover(v1: Path, media: Path, work: Path) -> dict[str, Any]:
    a, b = broker(), broker()
    on_a, on_b = Recorder(a.port, ["edge/#"], "fo-a"), Recorder(b.port, ["edge/#"], "fo-b")
    proc = agent(a, v1, media / "video_640x480.mp4", work / "fo-state", "fo1", "--broker", b.url,
                 "--telemetry-interval", "1", env=ENV)
    try:
        on_a.wait_for(lambda t, d: t == "edge/fo1/telemetry" and int(d["seq"]) >= 3, 180)
        a.kill()
        killed = time.monotonic()
        on_b.wait_for(lambda t, d: t == "edge/fo1/telemetry", 60)
        flowing = time.monotonic() - killed
        healthy = None
        while healthy is None and time.monotonic() - killed < 60:
            _wall, st = edgectl("status", "--broker", a.url, "--broker", b.url, "--json")
            if {r["device"]: r["state"] for r in json.loads(st.stdout or "[]")}.get("fo1") == "online":
                healthy = time.monotonic() - killed
        last = max(int(d["seq"]) for d in on_a.of("fo1/telemetry"))
        on_b.wait_for(lambda t, d: t == "edge/fo1/telemetry" and int(d["seq"]) >= last + 3, 30)
        seqs = {int(d["seq"]) for d in on_a.of("fo1/telemetry") + on_b.of("fo1/telemetry")}
        lost = len(set(range(min(seqs), max(seqs) + 1)) - seqs)
        return {"telemetry_flowing_s": round(flowing, 2), "status_healthy_s": round(healthy or -1, 2),
                "telemetry_lost": lost, "goal_s": 10}
    finally:
        proc.kill()
        on_a.close()
        on_b.close()
        b.kill()


def brokers() -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = [("mosquitto", broker())]
    work = Path(tempfile.mkdtemp(prefix="bench-brokers-"))
    if shutil.which("nats-server"):
        found.append(("nats", NatsBroker(work / "nats")))
    if shutil.which("rabbitmq-server") and os.getuid() == 0:
        found.append(("rabbitmq", RabbitBroker()))
    return found


def main() -> None:
    home()
    from scripts.make_media import ensure_media

    media = ensure_media()
    v1, v2 = demo_bundle(1), demo_bundle(2, targets="onnx-fp32,onnx-int8")
    out: dict[str, Any] = {"bundle_mb": round(sum(p.stat().st_size for p in v2.rglob("*") if p.is_file()) / 1e6, 1)}
    for name, b in brokers():
        print(f"brokers: {name}", file=sys.stderr)
        try:
            out[name] = one_broker(name, b.url, b.port, v1, v2, media, Path(tempfile.mkdtemp(prefix=f"bench-{name}-")))
        finally:
            (b.kill if isinstance(b, Broker) else b.stop)()
    out["failover_mosquitto_pair"] = failover(v1, media, Path(tempfile.mkdtemp(prefix="bench-failover-")))
    from fleet import registry

    for device in ["fo1", *(f"b-{name}" for name in ("mosquitto", "nats", "rabbitmq"))]:
        registry.forget(device)  # the demo shares this home: leave no device of ours behind
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
