"""The fleet on each broker this machine has, started here on free loopback ports: a Mosquitto node (and a pair
of independent ones for failover), a three-node NATS JetStream cluster and a two-node RabbitMQ cluster; prints
one JSON object.

Per broker, with an agent on the first node at the default 10 s telemetry interval: `edgectl status --json`
wall time (a fresh process) and whether it saw the device, five runs, through another node; push → committed
for the bench bundle through retained chunks (through the device's node, and on clusters through another one),
and through HTTP (a real nginx when installed, else `edgectl bundles serve`). Failover (an agent at a 1 s
interval, given every node's URL): its node is killed with -9; seconds until its telemetry flows through
another node, until `edgectl status` given the surviving URLs shows it online, and telemetry sequence numbers
lost.

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
from tests.support.interop import NatsCluster, RabbitCluster, wait_formed
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


def one_broker(name: str, urls: list[str], ports: list[int], v1: Path, v2: Path, media: Path,
               work: Path) -> dict[str, Any]:
    """The agent on the first node (given every URL); edgectl through the last."""
    forget_ours()
    device, far = f"b-{name}", urls[-1]
    rec = Recorder(ports[-1], ["edge/#"], f"rec-{name}")
    proc = agent(Broker(ports[0], work), v1, media / "video_640x480.mp4", work / "state", device,
                 *others(urls), env=ENV)
    try:
        # Its own selection done (not a fast start's safe candidate): a push then times the update alone.
        rec.wait_for(lambda t, d: t == f"edge/{device}/events" and d.get("kind") == "selection"
                     and not d["data"].get("provisional"), 240)
        out: dict[str, Any] = {"nodes": len(urls), "status": status_runs([far], device)}
        out["push_chunks"] = push(urls[0], v2, device)
        serves = v2 if out["push_chunks"]["result"] == "committed" else v1
        if len(urls) > 1:  # retained chunks published through a node the device is not on
            out["push_chunks_other_node"] = push(far, v1, device, "--force", "--timeout", "90")
            serves = v1 if out["push_chunks_other_node"]["result"] == "committed" else serves
        site = work / "site"
        site.mkdir()
        base, stop = http_server(site, work / "http")
        try:  # the bundle it does not serve (a push of the one it serves is answered at once)
            out["push_http"] = push(far, v1 if serves == v2 else v2, device, "--http", base, "--http-dir", str(site),
                                    "--force")
        finally:
            stop()
        return out
    finally:
        proc.kill()
        rec.close()


def failover(urls: list[str], ports: list[int], kill: Any, v1: Path, media: Path, work: Path) -> dict[str, Any]:
    """Kill the agent's node (the first) with -9; measured through the last."""
    forget_ours()
    on_a, on_b = Recorder(ports[0], ["edge/#"], "fo-a"), Recorder(ports[-1], ["edge/#"], "fo-b")
    proc = agent(Broker(ports[0], work), v1, media / "video_640x480.mp4", work / "fo-state", "fo1",
                 *others(urls), "--telemetry-interval", "1", env=ENV)
    try:
        on_a.wait_for(lambda t, d: t == "edge/fo1/telemetry" and int(d["seq"]) >= 3, 180)
        last = max(int(d["seq"]) for d in on_b.of("fo1/telemetry") + on_a.of("fo1/telemetry"))
        kill()
        killed = time.monotonic()
        on_b.wait_for(lambda t, d: t == "edge/fo1/telemetry" and int(d["seq"]) > last + 1, 60)
        flowing = time.monotonic() - killed
        healthy = None
        while healthy is None and time.monotonic() - killed < 60:
            _wall, st = edgectl("status", *others(urls), "--json")
            if {r["device"]: r["state"] for r in json.loads(st.stdout or "[]")}.get("fo1") == "online":
                healthy = time.monotonic() - killed
        last = max(int(d["seq"]) for d in on_b.of("fo1/telemetry"))
        on_b.wait_for(lambda t, d: t == "edge/fo1/telemetry" and int(d["seq"]) >= last + 3, 30)
        seqs = {int(d["seq"]) for d in on_a.of("fo1/telemetry") + on_b.of("fo1/telemetry")}
        lost = len(set(range(min(seqs), max(seqs) + 1)) - seqs)
        return {"telemetry_flowing_s": round(flowing, 2), "status_healthy_s": round(healthy or -1, 2),
                "telemetry_lost": lost, "goal_s": 10}
    finally:
        proc.kill()
        on_a.close()
        on_b.close()


def others(urls: list[str]) -> list[str]:
    """`--broker` for every node but the first (the one the agent starts on, or the one killed)."""
    return [a for u in urls[1:] for a in ("--broker", u)]


def mosquitto(v1: Path, v2: Path, media: Path, work: Path) -> dict[str, Any]:
    b = broker()
    try:
        out = one_broker("mosquitto", [b.url], [b.port], v1, v2, media, work / "one")
    finally:
        b.kill()
    a, b = broker(), broker()  # two independent nodes: the agent's list is its only link between them
    try:
        out["failover_pair"] = failover([a.url, b.url], [a.port, b.port], a.kill, v1, media, work / "pair")
    finally:
        a.kill()
        b.kill()
    return out


def cluster(name: str, v1: Path, v2: Path, media: Path, work: Path) -> dict[str, Any]:
    """A fresh cluster for the runs and another for the failover (a killed node does not come back)."""
    out: dict[str, Any] = {}
    for part in ("runs", "failover"):
        made = NatsCluster(work / part / "nats") if name == "nats" else RabbitCluster()
        try:
            wait_formed(made)
            urls, ports = [made.url(i) for i in range(len(made.ports))], made.ports
            if part == "runs":
                out = one_broker(name, urls, ports, v1, v2, media, work / part)
            else:
                out["failover"] = failover(urls, ports, lambda m=made: m.kill(0), v1, media, work / part)
        finally:
            made.stop()
    return out


def clusters() -> list[str]:
    found = ["nats"] if shutil.which("nats-server") else []
    if shutil.which("rabbitmq-server") and os.getuid() == 0:
        found.append("rabbitmq")
    return found


def main() -> None:
    home()
    from scripts.make_media import ensure_media

    media = ensure_media()
    v1, v2 = demo_bundle(1), demo_bundle(2, targets="onnx-fp32,onnx-int8")
    out: dict[str, Any] = {"bundle_mb": round(sum(p.stat().st_size for p in v2.rglob("*") if p.is_file()) / 1e6, 1)}
    base = Path(tempfile.mkdtemp(prefix="bench-brokers-"))
    print("brokers: mosquitto", file=sys.stderr)
    out["mosquitto"] = mosquitto(v1, v2, media, base / "mosquitto")
    for name in clusters():
        print(f"brokers: {name} cluster", file=sys.stderr)
        out[f"{name}_cluster"] = cluster(name, v1, v2, media, base / name)
    forget_ours()  # the demo shares this home: leave no device of ours behind
    print(json.dumps(out, indent=2))


def forget_ours() -> None:
    """The bench's devices out of edgectl's registry: a status that knows devices on another broker waits
    for them (its longer idle), which is not what a user with one fleet sees."""
    from fleet import registry

    for device in ["fo1", *(f"b-{name}" for name in ("mosquitto", "nats", "rabbitmq"))]:
        registry.forget(device)


if __name__ == "__main__":
    main()
