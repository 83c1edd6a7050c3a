"""The device's inference API, measured in one run with the demo bundle and one camera at 5 results/s; prints
one JSON object:

(1) latency at concurrency 1 through the API (HTTP binary tensors, gRPC) vs the raw runtime loop of the same
    candidate in this process (p50 ratio; goal <= 1.15);
(2) images/s at concurrency 1, 4, 16: the API (KServe v2 BYTES image → the task's answer) vs a naive FastAPI +
    ONNX Runtime FP32 server doing the same job (bench/naive_api.py; goal >= 2x at 16, p95 lower at each);
(3) the camera's rate and glass-to-result p95 alone and with the API at concurrency 16 (goal: rate held,
    p95 <= 1.5x);
(4) DeepStack's endpoint (`/v1/vision/scene`, the demo model is a classifier) at concurrency 1: p95 (goal
    under Frigate's 0.1 s default timeout);
(5) requests failed while v2 is pushed, verified, selected and swapped in (goal 0).

    .venv/bin/python bench/api.py [--seconds S]
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
from common import ROOT, agent, broker, demo_bundle, home

from tests.support.broker import Broker, free_port

DEVICE = "bench-api"


class Watch:
    """The agent's telemetry and events, as they arrive."""

    def __init__(self, b: Broker) -> None:
        self.telemetry: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-api-watch")
        self.client.on_connect = lambda c, *_: c.subscribe(f"edge/{DEVICE}/#")
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", b.port)
        self.client.loop_start()

    def _on(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/telemetry"):
            self.telemetry.append(json.loads(msg.payload))
        elif msg.topic.endswith("/events"):
            self.events.append(json.loads(msg.payload))

    def selected(self, timeout: float = 180) -> dict[str, Any]:
        stop = threading.Event()
        for _ in range(int(timeout * 10)):
            done = [e for e in self.events if e["kind"] == "selection" and not e["data"].get("provisional")]
            if done:
                return done[-1]["data"]["selected"]  # type: ignore[no-any-return]
            stop.wait(0.1)
        raise RuntimeError("the agent never selected")


def _config(tmp: Path, media: Path, http: str, grpc: str) -> Path:
    path = tmp / "agent.toml"
    path.write_text(f'[[cameras]]\nid = "cam0"\nsource = "{media / "video_640x480.mp4"}"\ninfer_fps = 5\n\n'
                    f'[api]\nlisten = "{http}"\ngrpc_listen = "{grpc}"\nqueue = 256\n')
    return path


def _ready(url: str, path: str = "/v2/health/ready") -> None:
    stop = threading.Event()
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection(url, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        stop.wait(0.2)
    raise RuntimeError(f"{url}: never ready")


def _p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q * 100)) * 1000, 2) if values else float("nan")


def timed(call: Callable[[], Any], seconds: float) -> list[float]:
    out, end = [], time.monotonic() + seconds
    call()  # warm
    while time.monotonic() < end:
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def load(make: Callable[[], Callable[[], Any]], concurrency: int, seconds: float) -> dict[str, float]:
    """`concurrency` threads, each with its own client, calling for `seconds`: rate, p50, p95, failures."""
    lat: list[float] = []
    failed = [0]
    stop = threading.Event()

    def worker() -> None:
        call = make()
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                call()
                lat.append(time.perf_counter() - t0)
            except Exception:
                failed[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    return {"per_s": round(len(lat) / seconds, 1), "p50_ms": _p(lat, 0.5), "p95_ms": _p(lat, 0.95),
            "failed": failed[0]}


def poster(host: str, path: str, body: bytes, headers: dict[str, str]) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        conn = http.client.HTTPConnection(host, timeout=30)

        def call() -> Any:
            conn.request("POST", path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {data[:200]!r}")
            return data
        return call
    return make


def kserve_image(jpeg: bytes) -> tuple[bytes, dict[str, str]]:
    raw = len(jpeg).to_bytes(4, "little") + jpeg
    head = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(raw)}}]}).encode()
    return head + raw, {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}


def deepstack_form(jpeg: bytes) -> tuple[bytes, dict[str, str]]:
    b = "----bench"
    body = (f'--{b}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + f"\r\n--{b}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={b}"}


def latency_c1(bundle: Path, selected: dict[str, Any], http_url: str, grpc_url: str, seconds: float
               ) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    from runtimes.bundle import open_bundle
    from runtimes.model import LoadedModel
    from runtimes.processing import to_input
    from runtimes.signature import source_input

    b = open_bundle(bundle)
    m, source = b.manifest, source_input(b.manifest)
    x = np.asarray(to_input(np.load(bundle / m.golden.images)[:1], m.preprocess, source))
    art = m.artifact(selected["target"])
    model = LoadedModel.load(m.preprocess, m.postprocess, art, b.artifact_files(art), selected["runtime"],
                             selected["settings"])
    raw = timed(lambda: model.infer_tensor(x, source), seconds)
    model.close()
    hc = httpclient.InferenceServerClient(http_url)
    inp = httpclient.InferInput(source.name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    over_http = timed(lambda: hc.infer(m.name, [inp]), seconds)
    gc = grpcclient.InferenceServerClient(grpc_url)
    ginp = grpcclient.InferInput(source.name, list(x.shape), "FP32")
    ginp.set_data_from_numpy(x)
    over_grpc = timed(lambda: gc.infer(m.name, [ginp]), seconds)
    raw50 = _p(raw, 0.5)
    return {"candidate": f"{selected['target']}/{selected['runtime']}", "raw_p50_ms": raw50,
            "http_p50_ms": _p(over_http, 0.5), "grpc_p50_ms": _p(over_grpc, 0.5),
            "http_vs_raw": round(_p(over_http, 0.5) / raw50, 2), "grpc_vs_raw": round(_p(over_grpc, 0.5) / raw50, 2)}


def camera(watch: Watch, since: int) -> dict[str, float]:
    rows = [t["cameras"]["cam0"] for t in watch.telemetry[since:] if "cam0" in t.get("cameras", {})]
    fps = [r["fps"] for r in rows]
    glass = [r["glass_p95_ms"] for r in rows if r.get("glass_p95_ms") is not None]
    return {"fps": round(float(np.mean(fps)), 2) if fps else float("nan"),
            "glass_p95_ms": round(float(np.median(glass)), 1) if glass else float("nan")}


def throughput(api: str, naive: str, jpeg: bytes, seconds: float, watch: Watch) -> dict[str, Any]:
    body, headers = kserve_image(jpeg)
    ours = poster(api, "/v2/models/efficientnet-lite0/infer", body, headers)
    theirs = poster(naive, "/v1/predict", jpeg, {"Content-Type": "application/octet-stream"})
    out: dict[str, Any] = {}
    for c in (1, 4, 16):
        mark = len(watch.telemetry)
        agent_side = load(ours, c, seconds)
        cam = camera(watch, mark)
        naive_side = load(theirs, c, seconds)
        out[f"c{c}"] = {"agent": agent_side, "naive": naive_side, "camera_during_agent": cam,
                        "rate_ratio": round(agent_side["per_s"] / max(naive_side["per_s"], 1e-9), 2),
                        "p95_ratio": round(agent_side["p95_ms"] / naive_side["p95_ms"], 2)}
    return out


def push_under_load(b: Broker, api: str, v2: Path, jpeg: bytes) -> dict[str, Any]:
    body, headers = kserve_image(jpeg)
    result: dict[str, Any] = {}
    stop = threading.Event()
    lat: list[float] = []
    failures: list[str] = []

    def worker() -> None:
        call = poster(api, "/v2/models/efficientnet-lite0/infer", body, headers)()
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                call()
                lat.append(time.perf_counter() - t0)
            except Exception as exc:
                failures.append(str(exc)[:200])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    done = subprocess.run([sys.executable, "-m", "edgectl", "push", str(v2), "--device", DEVICE, "--broker", b.url,
                           "--timeout", "300", "--json"], capture_output=True, text=True, cwd=ROOT, check=False)
    stop.wait(3)
    stop.set()
    for t in threads:
        t.join()
    outcome = json.loads(done.stdout)[0]["result"] if done.returncode == 0 and done.stdout else done.stderr[-300:]
    result.update(push=outcome, requests=len(lat) + len(failures), failed=len(failures),
                  first_failures=failures[:3], p95_ms=_p(lat, 0.95))
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    home()
    from scripts.make_media import ensure_media

    media = ensure_media()
    bundle, v2 = demo_bundle(), demo_bundle(2, "onnx-fp32,onnx-int8")
    b = broker()
    tmp = Path(tempfile.mkdtemp(prefix="bench-api-"))
    api, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    watch = Watch(b)
    proc = agent(b, bundle, None, tmp / "state", DEVICE, "--config", str(_config(tmp, media, api, grpc)),
                 "--telemetry-interval", "2")
    naive_port = free_port()
    naive = subprocess.Popen([sys.executable, str(ROOT / "bench" / "naive_api.py"),
                              str(bundle / "onnx-fp32" / "model.onnx"), str(naive_port)], cwd=ROOT)
    try:
        selected = watch.selected()
        _ready(api)
        _ready(f"127.0.0.1:{naive_port}", "/docs")
        jpeg = bytes(cv2.imencode(".jpg", cv2.imread(str(sorted((media / "val").iterdir())[0])))[1])
        mark = len(watch.telemetry)
        threading.Event().wait(12)
        alone = camera(watch, mark)
        out: dict[str, Any] = {"latency_c1": latency_c1(bundle, selected, api, grpc, args.seconds)}
        out["throughput"] = throughput(api, f"127.0.0.1:{naive_port}", jpeg, args.seconds, watch)
        during = out["throughput"]["c16"]["camera_during_agent"]
        out["camera"] = {"alone": alone, "api_at_c16": during,
                         "glass_p95_ratio": round(during["glass_p95_ms"] / alone["glass_p95_ms"], 2)}
        body, headers = deepstack_form(jpeg)
        out["deepstack_scene_c1"] = load(poster(api, "/v1/vision/scene", body, headers), 1, args.seconds)
        out["push_under_load"] = push_under_load(b, api, v2, jpeg)
        print(json.dumps(out))
    finally:
        naive.terminate()
        proc.terminate()
        proc.wait(30)
        b.stop()



if __name__ == "__main__":
    main()
