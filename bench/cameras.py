"""How many RTSP cameras this device carries. Prints one JSON object.

N cameras of the repo's video at 640x480 and 1280x720, 15 fps H.264, from a real RTSP server on loopback
(gst-rtsp-server, no re-encoding), a target of 5 results/s per camera. A size passes at N when every camera
answers at >= 95 % of its rate with p95 glass-to-result <= 500 ms, measured over the last telemetry
intervals. Compared in one run, for the largest N each carries:
  - agent: one `edge-agent` process for all N cameras (its own selection, batching where it gains);
  - naive: one process per camera, OpenCV + ONNX Runtime FP32 (the bundle's onnx-fp32, default threads),
    reading frames and answering the newest one every 0.2 s.
Both time a frame from the stream's own timestamp (agent.video.capture.StreamClock) to its answer.
Also: the reconnect time after the RTSP server restarts, and decoding alone vs the agent end to end at the
agent's largest N of the large size (frames decoded per second; decode is what fills the cores there).

    .venv/bin/python bench/cameras.py [--quick] [--size 640x480|1280x720]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import ROOT, agent, broker, demo_bundle, home

from tests.support.mqtt import Recorder
from tests.support.rtsp import RtspServer, stream

RATE, P95_MS, MEET = 5.0, 500.0, 0.95
SIZES = {"640x480": ("video_640x480", (640, 480)), "1280x720": ("video_1920x1080", (1280, 720))}
MEDIA = ROOT / ".cache" / "media"
WORK = Path(tempfile.mkdtemp(prefix="bench-cameras-"))
NAIVE = Path(__file__).with_name("naive_camera.py")
SEEN: dict[int, Any] = {}


def passes(cams: list[dict[str, float]]) -> bool:
    return bool(cams) and all(c["fps"] >= RATE * MEET and c["glass_p95_ms"] <= P95_MS for c in cams)


def agent_trial(bundle: Path, server: RtspServer, n: int, seconds: float) -> list[dict[str, float]]:
    """Per camera over the last intervals: answers/s and p95 glass-to-result (telemetry every 5 s)."""
    b = broker()
    cfg = WORK / f"agent-{n}.toml"
    cfg.write_text("".join(f'[[cameras]]\nid = "c{i}"\nsource = "{server.url("cam")}"\ninfer_fps = {RATE}\n'
                           for i in range(n)))
    rec = Recorder(b.port, ["edge/+/telemetry"])
    proc = agent(b, bundle, None, WORK / "agent-state", "bench", "--config", str(cfg),
                 "--telemetry-interval", "5")
    try:
        threading.Event().wait(seconds)
    finally:
        proc.terminate()
        proc.wait(30)
        rec.close()
        b.stop()
    tel = [d for _t, d, _r in rec.messages][-2:]
    SEEN[n] = tel[-1].get("capacity") if tel else None  # what the agent estimated at this N
    return per_camera(tel, n)


def per_camera(tel: list[dict[str, Any]], n: int) -> list[dict[str, float]]:
    out = []
    for i in range(n):
        cams = [t["cameras"].get(f"c{i}") for t in tel]
        cams = [c for c in cams if c and c.get("glass_p95_ms") is not None]
        if len(cams) < len(tel) or not cams:
            return []
        out.append({"fps": statistics.mean(c["fps"] for c in cams),
                    "glass_p95_ms": max(c["glass_p95_ms"] for c in cams),
                    "in_fps": statistics.mean(c["in_fps"] for c in cams)})
    return out


def naive_trial(bundle: Path, server: RtspServer, n: int, seconds: float) -> list[dict[str, float]]:
    model = bundle / "onnx-fp32" / "model.onnx"
    procs = [subprocess.Popen([sys.executable, str(NAIVE), server.url("cam"), str(model), str(RATE), str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=seconds + 120)
        try:
            out.append(json.loads(stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return []
    return out


def largest(trial: Any, bundle: Path, server: RtspServer, seconds: float, limit: int) -> dict[str, Any]:
    """Doubling from 4 then bisecting: the largest N that passes (0 when one camera does not)."""
    best, lo, hi, tried = 0, 0, None, {}
    n = 4  # below is found by bisecting when 4 fails
    while n <= limit and (hi is None or n < hi):
        cams = trial(bundle, server, n, seconds)
        ok = passes(cams)
        tried[n] = {"pass": ok, "min_fps": min((c["fps"] for c in cams), default=None),
                    "max_p95_ms": max((c["glass_p95_ms"] for c in cams), default=None)}
        if ok:
            best, lo = n, n
        else:
            hi = n
        n = n * 2 if hi is None else (lo + hi) // 2 if (lo + hi) // 2 > lo else hi
    return {"cameras": best, "trials": tried}


def decode_only(server: RtspServer, n: int, seconds: float) -> float:
    """Frames per second N cameras decode with nothing else running (the agent's own Camera)."""
    from agent.video.camera import Camera

    cams = [Camera(f"d{i}", server.url("cam")).start() for i in range(n)]
    threading.Event().wait(10)  # every camera connected and past the server's preroll burst
    start = sum(c.stats.frames for c in cams)
    threading.Event().wait(seconds)
    total = sum(c.stats.frames for c in cams) - start
    for c in cams:
        c.stop()
    return total / seconds


def reconnect(bundle: Path, server: RtspServer) -> float | None:
    """From the server's restart to the agent reading the camera again (its own event)."""
    b = broker()
    rec = Recorder(b.port, ["edge/+/events"])
    proc = agent(b, bundle, server.url("cam"), WORK / "agent-state", "bench")
    try:
        rec.wait_for(lambda _t, d: "serving" in d.get("message", ""), 120)
        threading.Event().wait(3)
        server.kill()
        rec.wait_for(lambda _t, d: "lost" in d.get("message", ""), 30)
        threading.Event().wait(3)
        server.start()
        restarted = time.monotonic()
        rec.wait_for(lambda _t, d: "again after" in d.get("message", ""), 30)
        return round(time.monotonic() - restarted, 2)
    finally:
        proc.terminate()
        proc.wait(30)
        rec.close()
        b.stop()


def main() -> None:
    quick = "--quick" in sys.argv
    seconds, limit = (12.0, 8) if quick else (20.0, 32)
    home()
    bundle = demo_bundle()
    result: dict[str, Any] = {"rate_per_camera": RATE, "p95_limit_ms": P95_MS, "cores": os.cpu_count()}
    only = sys.argv[sys.argv.index("--size") + 1] if "--size" in sys.argv else None
    for size, (video, wh) in SIZES.items():
        if only and size != only:
            continue
        with RtspServer({"cam": stream(MEDIA, video, wh, "h264", 300)}) as server:
            agent_trial(bundle, server, 1, 30)  # the device's own selection, cached for the trials
            a = largest(agent_trial, bundle, server, seconds + 25, limit)  # + the cameras' connects
            nv = largest(naive_trial, bundle, server, seconds, limit)
            result[size] = {"agent": a, "naive": nv,
                            "agent_vs_naive": round(a["cameras"] / nv["cameras"], 2) if nv["cameras"] else None}
            result[size]["agent_capacity_estimate"] = SEEN.get(a["cameras"])
            if size == "1280x720" and a["cameras"]:
                n = a["cameras"]
                alone = decode_only(server, n, seconds)
                e2e = agent_trial(bundle, server, n, seconds + 20)
                result[size]["decode_only_fps"] = round(alone, 1)
                result[size]["e2e_decoded_fps"] = round(sum(c["in_fps"] for c in e2e), 1)
                result[size]["e2e_vs_decode_only"] = round(sum(c["in_fps"] for c in e2e) / alone, 3)
            if size == "640x480":
                result["reconnect_s"] = reconnect(bundle, server)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
