"""Model update over a loopback broker; prints one JSON object.

(a) push → committed for a ~20 MB bundle on one device (soak shortened to 2 s and reported apart),
(b) longest gap between consecutive results during the switch vs the normal interval,
(c) a transfer killed at 50 %: chunks fetched again after the restart vs the ones that were missing,
(d) `edgectl status --json` wall time (a fresh process) with 1, 100 and 1,000 simulated devices.

    .venv/bin/python bench/update.py
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from common import ROOT, agent, broker, demo_bundle, home

SOAK_S = 2.0
ENV = {"EDGE_AGENT__THRESHOLDS__SOAK_S": str(SOAK_S), "EDGE_AGENT__RESULTS_PER_S": "1000",
       "EDGE_AGENT__SELECTION_BUDGET_S": "2"}


class Watch:
    def __init__(self, port: int, device: str) -> None:
        self.results: list[float] = []
        self.events: list[dict[str, object]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{device}")
        self.client.on_connect = lambda c, *_: (c.subscribe(f"edge/{device}/results", 0),
                                                c.subscribe(f"edge/{device}/events", 1))
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("results"):
            self.results.append(time.monotonic())
        else:
            self.events.append(json.loads(msg.payload))

    def wait_event(self, pred, timeout: float = 120) -> dict[str, object]:  # type: ignore[no-untyped-def]
        deadline, seen = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            for ev in self.events[seen:]:
                if pred(ev):
                    return ev
            seen = len(self.events)
            threading.Event().wait(0.05)
        raise TimeoutError("event not seen")


def push_and_time(port: int, bundle: Path, device: str, watch: Watch) -> tuple[float, float, float]:
    from fleet.mqtt import BrokerSettings
    from fleet.push import Pusher
    from fleet.topics import Topics

    pusher = Pusher(BrokerSettings(port=port), Topics())
    pusher.connect()
    start = time.monotonic()
    _, desired = pusher.publish_bundle(bundle)
    pusher.follow([device])
    pusher.set_desired([device], desired)
    result = pusher.wait([device], 180)[0]
    end = time.monotonic()
    pusher.close()
    if result["result"] != "committed":
        raise RuntimeError(f"push did not commit: {result}")
    return end - start, start, end


def gaps(times: list[float], start: float, end: float) -> tuple[float, float]:
    before = [b - a for a, b in itertools.pairwise(times) if b < start]
    during = [b - a for a, b in itertools.pairwise(times) if start <= a <= end]
    return statistics.median(before), max(during)


def cut_transfer(port: int, bundle: Path, device: str, watch: Watch, proc: subprocess.Popen[bytes]) -> int:
    """Publish half the chunks while the agent fetches, kill -9 it, publish the rest; returns the total."""
    from fleet.messages import Desired
    from fleet.mqtt import BrokerSettings
    from fleet.push import Pusher
    from fleet.topics import Topics
    from fleet.transfer import pack

    packed, topics = pack(bundle), Topics()
    total = len(packed.manifest.chunk_sha256)
    pusher = Pusher(BrokerSettings(port=port), topics)
    pusher.connect()

    def send(indices: range) -> None:
        mids = [pusher._publish(topics.bundle_chunk(packed.digest, i), packed.chunk(i)) for i in indices]
        pusher._wait_acks(mids, 60)

    pusher._wait_acks([pusher._publish(topics.bundle_manifest(packed.digest),
                                       packed.manifest.model_dump_json().encode())], 30)
    send(range(total // 2))
    desired = Desired(digest=packed.digest, name="bench", version=3, size=packed.manifest.size, chunks=total)
    pusher.set_desired([device], desired)
    watch.wait_event(lambda e: e.get("data", {}).get("missing") == total)
    threading.Event().wait(3)  # the retained half arrives in well under a second on loopback
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    send(range(total // 2, total))
    pusher.close()
    return total


def status_time(port: int, count: int, home_dir: Path) -> float:
    from fleet.messages import ModelRef, Status

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sim-{count}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(f"edge/sim{count}-{i:05d}/status", Status(
        device=f"sim{count}-{i:05d}", state="online", groups=[f"g{count}"],
        model=ModelRef(name="m", version=1, digest="0" * 64)).model_dump_json(), qos=1, retain=True)
        for i in range(count)]
    for info in infos:
        info.wait_for_publish(30)
    client.loop_stop()
    client.disconnect()
    env = {**os.environ, "EDGECTL_HOME": str(home_dir)}
    cmd = [str(ROOT / ".venv/bin/edgectl"), "status", "--broker", f"mqtt://127.0.0.1:{port}", "--group",
           f"g{count}", "--json"]
    subprocess.run(cmd, env=env, capture_output=True, check=False)  # learns the devices, like a daily user
    start = time.monotonic()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if len(json.loads(out.stdout)) != count:
        raise RuntimeError(f"status returned {len(json.loads(out.stdout))} of {count}")
    return elapsed


def main() -> None:
    home()
    v1 = demo_bundle(1)
    v2 = demo_bundle(2, targets="onnx-fp32")
    v3 = demo_bundle(3, targets="onnx-fp32")
    b = broker()
    work = Path(tempfile.mkdtemp(prefix="bench-update-"))
    video = ROOT / ".cache/media/video_640x480.mp4"
    watch = Watch(b.port, "up")

    def spawn() -> subprocess.Popen[bytes]:
        return agent(b, v1, video, work / "state", "up", "--telemetry-interval", "1", env=ENV)

    proc = spawn()
    watch.wait_event(lambda e: e.get("kind") == "selection", 120)
    threading.Event().wait(3)
    seconds, start, end = push_and_time(b.port, v2, "up", watch)
    normal, longest = gaps(watch.results, start, end)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # (c) cut a transfer at 50 %, with the agent up for the first half and down for the second
    proc = spawn()
    watch.wait_event(lambda e: e.get("kind") == "selection", 120)
    total = cut_transfer(b.port, v3, "up", watch, proc)
    proc = spawn()
    resumed = watch.wait_event(lambda e: "have" in e.get("data", {}) and e["data"]["have"] > 0, 120)
    watch.wait_event(lambda e: e.get("data", {}).get("phase") == "committed" and "v3" in str(e.get("message")), 180)
    proc.terminate()
    proc.wait(30)
    statuses = {str(n): round(status_time(b.port, n, work / f"home{n}"), 3) for n in (1, 100, 1000)}
    b.stop()
    print(json.dumps({
        "bundle_mb": round(sum(f.stat().st_size for f in v2.rglob("*") if f.is_file()) / 1e6, 1),
        "push_to_committed_s": round(seconds, 2), "of_which_soak_s": SOAK_S,
        "push_to_committed_without_soak_s": round(seconds - SOAK_S, 2),
        "normal_result_interval_s": round(normal, 3), "longest_gap_during_switch_s": round(longest, 3),
        "gap_ratio": round(longest / normal, 2),
        "resume": {"total_chunks": total, "already_here": resumed["data"]["have"],
                   "fetched_after_restart": resumed["data"]["missing"]},
        "status_seconds": statuses,
        "goals": {"push_to_committed_s": 10, "gap_ratio": 3, "status_seconds_1000": 1.0},
    }, indent=2))


if __name__ == "__main__":
    sys.exit(main())
