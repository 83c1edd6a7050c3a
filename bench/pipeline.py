"""End-to-end pipeline numbers; prints one JSON object.

(a) results/s through camera thread + engine + post-processing on the 640x480 and 1080p videos (read as
fast as taken) vs the raw inference loop of the same candidate, measured back to back in one run;
(b) agent RSS vs a process that only loads the runtime and the model, with the runner-up warm and lazy (and
    the lazy runner-up's load time in a failover drill);
(c) telemetry published vs received across a broker stop/restart (10 s down) and a kill -9 of the agent.

    .venv/bin/python bench/pipeline.py [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import psutil
from common import ROOT, agent, broker, demo_bundle, home

from tests.support.broker import Broker

RAW_RSS = """
import sys, numpy as np, psutil
from pathlib import Path
from agent.inference import selection
from runtimes.bundle import open_bundle
b = open_bundle(Path(sys.argv[1]))
sel = selection.load_cached(next((Path(sys.argv[2]) / "selection").glob("*pipeline.json")))
m = selection.load_candidate(b, sel.selected)
m.infer_frame(np.zeros((480, 640, 3), np.uint8))
print(psutil.Process().memory_info().rss)
"""


def rates(bundle_root: Path, video: Path, seconds: float) -> tuple[float, float, float, str]:
    from agent.inference import selection
    from agent.inference.engine import Engine, Slot
    from agent.inference.probe import probe
    from agent.video.camera import Camera
    from agent.video.pipeline import Pipeline
    from runtimes.bundle import open_bundle
    from runtimes.processing import to_input

    bundle = open_bundle(bundle_root)
    sel = selection.select(bundle, probe(), budget_s=3.0, source=video)
    model = selection.load_candidate(bundle, sel.selected)
    image = np.load(bundle.path(bundle.manifest.golden.images))[:1]
    tensor = to_input(image, model.pre, model.artifact.inputs[0])
    stop, count = time.monotonic() + seconds, 0
    while time.monotonic() < stop:
        model.adapter.infer([tensor])
        count += 1
    raw = count / seconds
    decode = _decode_rate(video, seconds / 2)
    engine = Engine(Slot(sel.selected.key, model), None, labels=bundle.manifest.labels)
    camera = Camera("bench", str(video), loop=True, realtime=False).start()
    pipe = Pipeline(camera, lambda: engine, lambda _a: None, lambda _e: None).start()
    threading.Event().wait(1.0)  # warm-up
    start_n, start_t = pipe.stats.processed, time.monotonic()
    threading.Event().wait(seconds)
    e2e = (pipe.stats.processed - start_n) / (time.monotonic() - start_t)
    pipe.stop()
    camera.stop()
    engine.close()
    return e2e, raw, decode, sel.selected.key


def _decode_rate(video: Path, seconds: float) -> float:
    """Decode + preprocess alone: with inference on every core, the bound on the pipeline."""
    import cv2

    from runtimes.bundle import open_bundle
    from runtimes.processing import resize_frame

    pre = open_bundle(ROOT / "out" / "demo-bundle").manifest.preprocess
    cap, count, stop = cv2.VideoCapture(str(video)), 0, time.monotonic() + seconds
    while time.monotonic() < stop:
        ok, frame = cap.read()
        if not ok:
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            continue
        resize_frame(frame, pre)
        count += 1
    return count / seconds


def telemetry_loss(bundle: Path, video: Path, work: Path) -> dict[str, object]:
    b = broker()
    received: set[int] = set()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sub", clean_session=False)
    sub.on_connect = lambda c, *_: c.subscribe("edge/loss/telemetry", 1)
    sub.on_message = lambda _c, _u, m: received.add(json.loads(m.payload)["seq"])
    sub.reconnect_delay_set(0.2, 1)
    sub.connect("127.0.0.1", b.port)
    sub.loop_start()
    proc = agent(b, bundle, video, work / "state", "loss", "--telemetry-interval", "0.2")
    wait = threading.Event().wait
    wait(15)
    b.stop()  # the broker is down for 10 s
    wait(10)
    b.start()
    wait(5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc = agent(b, bundle, video, work / "state", "loss", "--telemetry-interval", "0.2")
    wait(15)
    proc.terminate()
    proc.wait(30)
    wait(2)
    sub.loop_stop()
    b.stop()
    top = max(received) if received else 0
    return {"published_max_seq": top, "received": len(received), "lost": len(set(range(1, top + 1)) - received)}


def rss_and_failover(b: Broker, bundle: Path, video: Path, work: Path, runner_up: str) -> tuple[int, float | None]:
    """The agent's RSS after 25 s of serving (runner-up warm or lazy), then a failover drill: how long the
    lazy runner-up took to load while the camera waited."""
    device, failover = f"rss-{runner_up}", threading.Event()
    load: list[float | None] = []

    def on_event(_c: object, _u: object, m: mqtt.MQTTMessage) -> None:
        doc = json.loads(m.payload)
        if doc["kind"] == "failover":
            load.append(doc["data"].get("load_s"))
            failover.set()

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *_: c.subscribe(f"edge/{device}/events", 1)
    sub.on_message = on_event
    sub.connect("127.0.0.1", b.port)
    sub.loop_start()
    env = {"EDGE_AGENT__RUNNER_UP": runner_up, "EDGE_AGENT__DRILL__AFTER_CALLS": "1200"}
    proc = agent(b, bundle, video, work / "rss" / "state", device, env=env)
    threading.Event().wait(25)
    rss = int(psutil.Process(proc.pid).memory_info().rss)
    failover.wait(90)
    proc.terminate()
    proc.wait(30)
    sub.loop_stop()
    return rss, (load[0] if load else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    home()
    bundle = demo_bundle()
    media = ROOT / ".cache" / "media"
    e2e_480, raw_480, dec_480, key_480 = rates(bundle, media / "video_640x480.mp4", args.seconds)
    e2e_1080, raw_1080, dec_1080, key_1080 = rates(bundle, media / "video_1920x1080.mp4", args.seconds)
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    b = broker()
    agent_rss, _ = rss_and_failover(b, bundle, media / "video_640x480.mp4", work, "warm")
    lazy_rss, lazy_load_s = rss_and_failover(b, bundle, media / "video_640x480.mp4", work, "lazy")
    raw = subprocess.run([sys.executable, "-c", RAW_RSS, str(bundle), str(work / "rss" / "state"),
                          str(media / "video_640x480.mp4")], cwd=ROOT, capture_output=True, text=True, check=True)
    b.stop()
    runtime_rss = int(raw.stdout.split()[-1])
    loss = telemetry_loss(bundle, media / "video_640x480.mp4", work / "loss")
    print(json.dumps({
        "e2e_640x480_results_per_s": round(e2e_480, 1), "raw_loop_per_s_640": round(raw_480, 1),
        "ratio_640x480": round(e2e_480 / raw_480, 3), "candidate_640": key_480,
        "decode_preprocess_only_per_s_640": round(dec_480, 1), "decode_preprocess_only_per_s_1080": round(dec_1080, 1),
        "e2e_1080p_results_per_s": round(e2e_1080, 1), "raw_loop_per_s_1080": round(raw_1080, 1),
        "ratio_1080p": round(e2e_1080 / raw_1080, 3), "candidate_1080": key_1080,
        "agent_rss_mb": round(agent_rss / 1e6), "runtime_only_rss_mb": round(runtime_rss / 1e6),
        "agent_over_runtime_mb": round((agent_rss - runtime_rss) / 1e6),
        "lazy_runner_up": {"agent_rss_mb": round(lazy_rss / 1e6),
                           "agent_over_runtime_mb": round((lazy_rss - runtime_rss) / 1e6),
                           "failover_load_s": lazy_load_s},
        "telemetry": loss,
        "goals": {"ratio_640x480": 0.95, "ratio_1080p": 0.80, "agent_over_runtime_mb": 60, "lost": 0},
    }, indent=2))


if __name__ == "__main__":
    main()
