"""Simulated fleet on a private mosquitto; prints one JSON object.

N devices (asyncio + gmqtt: paho's select() loop stops near 340 clients a process) speak the fleet/ protocol
exactly: retained status with LWT, telemetry, a subscription to their desired state, and chunk fetches from
the retained bundle topics with a fake model store. Measured: `edgectl status --json` wall time returning
all N (a fresh process, after one run that learned the devices), time until every LWT shows offline after
the simulator is killed, broker CPU during the run.

    .venv/bin/python bench/fleet_sim.py --devices N [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
from common import ROOT, broker

SIM_CHILD = "--child"


async def device(name: str, port: int, stop: asyncio.Event, interval: float, fails: bool) -> None:
    import gmqtt

    from fleet.messages import BundleManifest, Desired, Event, Status, Telemetry
    from fleet.topics import Topics

    topics = Topics()
    offline = Status(device=name, state="offline", agent_version="sim").model_dump_json()
    client = gmqtt.Client(name, will_message=gmqtt.Message(topics.status(name), offline, qos=1, retain=True))
    chunks: dict[int, bytes] = {}
    want: dict[str, int] = {}

    def event(digest: str, phase: str) -> None:
        ev = Event(device=name, seq=len(chunks), ts=time.time(), kind="update", message=f"sim {phase}",
                   data={"phase": phase, "digest": digest})
        client.publish(topics.events(name), ev.model_dump_json(), qos=1)

    def status() -> None:
        client.publish(topics.status(name), Status(device=name, state="online", agent_version="sim",
                                                   groups=["sim"], telemetry_interval_s=interval).model_dump_json(),
                       qos=1, retain=True)

    def on_message(_c, topic, payload, _qos, _props):  # type: ignore[no-untyped-def]
        if topic == topics.ping():  # as the agent does: a live status after a jitter of up to 0.3 s
            asyncio.get_running_loop().call_later(random.uniform(0, 0.3), status)
        elif topic == topics.desired(name) and payload:
            desired = Desired.model_validate_json(payload)
            client.subscribe(topics.bundle_manifest(desired.digest), qos=0)
        elif topic.endswith("/manifest") and payload:
            manifest = BundleManifest.model_validate_json(payload)
            want[manifest.digest] = len(manifest.chunk_sha256)
            event(manifest.digest, "fetching")
            for i in range(len(manifest.chunk_sha256)):  # the fake store lacks every chunk
                client.subscribe(topics.bundle_chunk(manifest.digest, i), qos=0)
        elif "/chunk/" in topic:
            digest = topic.split("/")[2]
            chunks[int(topic.rsplit("/", 1)[1])] = payload
            if len(chunks) == want.get(digest):
                event(digest, "refused" if fails else "committed")  # induced failures for the canary run
        return 0

    client.on_message = on_message
    await client.connect("127.0.0.1", port, version=gmqtt.constants.MQTTv311, keepalive=60)
    client.subscribe(topics.desired(name), qos=0)
    client.subscribe(topics.ping(), qos=0)
    status()
    seq, started = 0, time.monotonic()
    while not stop.is_set():
        seq += 1
        client.publish(topics.telemetry(name), Telemetry(device=name, seq=seq, ts=time.time(),
                                                         uptime_s=time.monotonic() - started).model_dump_json(), qos=1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def child(count: int, port: int, interval: float) -> None:
    stop = asyncio.Event()
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(device(f"sim-{i:05d}", port, stop, interval, fails=i % 10 == 0)))
        if i % 200 == 199:
            await asyncio.sleep(0.05)  # connect in waves, not one burst
    print("ready", flush=True)
    await asyncio.gather(*tasks)


def edgectl() -> str:
    """The installed command: next to this interpreter (a venv not on PATH), else on PATH."""
    beside = Path(sys.executable).parent / "edgectl"
    found = str(beside) if beside.exists() else shutil.which("edgectl")
    if found is None:
        sys.exit(f"fleet_sim: no edgectl next to {sys.executable} or on PATH (pip install -e . first)")
    return found


def raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def count_retained(port: int, want: str, count: int, timeout: float) -> float:
    """Seconds until `count` devices show status `want`."""
    there: set[str] = set()  # devices in state `want` (a set, not a recount per message: 10,000² is seconds)
    done = threading.Event()

    def on_message(_c, _u, msg):  # type: ignore[no-untyped-def]
        if msg.payload:
            (there.add if json.loads(msg.payload)["state"] == want else there.discard)(msg.topic)
            if len(there) >= count:
                done.set()

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"count-{want}")
    c.on_connect = lambda cl, *_: cl.subscribe("edge/+/status", 1)
    c.on_message = on_message
    start = time.monotonic()
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(timeout)
    c.loop_stop()
    c.disconnect()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--canary", type=int, default=0, help="push to the group with this many canaries")
    parser.add_argument("--abort-on", type=float, default=5.0)
    parser.add_argument(SIM_CHILD, nargs=1, type=int, default=None)
    args = parser.parse_args()
    raise_nofile()
    if args.child:
        asyncio.run(child(args.devices, args.child[0], args.interval))
        return
    b = broker_with_limits()
    home = Path(tempfile.mkdtemp(prefix="fleet-sim-home-"))
    env = {**os.environ, "EDGECTL_HOME": str(home), "PYTHONPATH": str(ROOT)}
    sim = subprocess.Popen([sys.executable, __file__, "--devices", str(args.devices), "--interval",
                            str(args.interval), SIM_CHILD, str(b.port)], stdout=subprocess.PIPE, env=env)
    if sim.stdout is not None:
        sim.stdout.readline()  # "ready": every connect has been started
    online_s = count_retained(b.port, "online", args.devices, 120)
    broker_proc = psutil.Process(b.proc.pid) if b.proc else None
    cpu0 = broker_proc.cpu_times() if broker_proc else None
    cmd = [edgectl(), "status", "--broker", b.url, "--json"]
    subprocess.run(cmd, env=env, capture_output=True, check=False)
    start = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    status_s = time.monotonic() - start
    rows = json.loads(out.stdout)
    canary = run_canary(b.url, env, args.canary, args.abort_on) if args.canary else None
    threading.Event().wait(args.seconds)
    busy = 0.0
    if broker_proc and cpu0:
        cpu1 = broker_proc.cpu_times()
        busy = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / (time.monotonic() - start) * 100
    sim.send_signal(signal.SIGKILL)
    sim.wait()
    lwt_s = count_retained(b.port, "offline", args.devices, 120)
    b.stop()
    print(json.dumps({"devices": args.devices, "rows_returned": len(rows), "status_seconds": round(status_s, 3),
                      "all_online_seconds": round(online_s, 2), "lwt_seconds": round(lwt_s, 3),
                      "broker_cpu_pct": round(busy, 1), "telemetry_interval_s": args.interval, "canary": canary,
                      "goals": {"status_seconds": 1.0, "lwt_seconds": 2.0}}, indent=2))


def run_canary(url: str, env: dict[str, str], canary: int, abort_on: float) -> dict[str, object]:
    """Push a tiny real bundle to every simulated device (one in ten fails on purpose) with a canary wave."""
    sys.path.insert(0, str(ROOT))
    from tests.support import fakebundle

    bundle = fakebundle.make(Path(tempfile.mkdtemp(prefix="sim-bundle-")) / "b", {"onnx-fp32": {}})
    cmd = [edgectl(), "push", str(bundle), "--group", "sim", "--broker", url,
           "--canary", str(canary), "--abort-on", str(abort_on), "--timeout", "60", "--json"]
    start = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    results = json.loads(out.stdout)
    counts: dict[str, int] = {}
    for r in results:
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    return {"devices": len(results), "canaries": canary, "abort_on_pct": abort_on, "results": counts,
            "stopped": counts.get("skipped", 0) > 0, "seconds": round(time.monotonic() - start, 2)}


def broker_with_limits():  # type: ignore[no-untyped-def]
    b = broker()
    b.stop()
    b.extra_config = "max_connections -1\nmax_queued_messages 10000\n"
    raise_nofile()  # inherited by the broker process
    return b.start()


if __name__ == "__main__":
    main()
