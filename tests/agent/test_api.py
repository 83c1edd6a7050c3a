"""The device's inference API on a real agent: a classifier, a detector and a raw model served at once, called
with the clients people use (tritonclient over HTTP and gRPC, TF Serving's REST shapes, a DeepStack form post)
and compared with the selected runtime run directly; bad requests, the token, mTLS, and a push under load."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from runtimes.bundle import open_bundle
from runtimes.model import LoadedModel
from runtimes.processing import to_input
from runtimes.signature import source_input
from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.prom import lint
from tests.support.updates import push, serving
from tests.support.video import still_video
from tests.support.warm import active

pytestmark = pytest.mark.slow
DEVICE = "api1"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Device:
    broker: Broker
    recorder: Recorder
    http: str
    grpc: str
    bundles: dict[str, Path]  # by the agent's model name
    still: np.ndarray  # the detector camera's frame, as the agent decodes it
    proc: subprocess.Popen[bytes]

    def selected(self, model: str) -> dict[str, Any]:
        """The candidate serving `model` (its last selection event): to run the same runtime directly."""
        want = None if model == "default" else model  # the default model's events carry no `model`
        events = [d for d in self.recorder.of(f"{DEVICE}/events")
                  if d["kind"] == "selection" and d["data"].get("model") == want]
        return events[-1]["data"]["selected"]  # type: ignore[no-any-return]

    def direct(self, model: str) -> tuple[LoadedModel, Any]:
        b = open_bundle(self.bundles[model])
        sel = self.selected(model)
        art = b.manifest.artifact(sel["target"])
        return LoadedModel.load(b.manifest.preprocess, b.manifest.postprocess, art, b.artifact_files(art),
                                sel["runtime"], sel["settings"]), b.manifest


def _config(tmp: Path, bundles: dict[str, Path], media: Path, http: str, grpc: str) -> Path:
    token = tmp / "token"
    token.write_text(TOKEN + "\n")
    config = tmp / "agent.toml"
    config.write_text(f'[models]\nfaces = "{bundles["faces"]}"\nmesh = "{bundles["mesh"]}"\n\n'
                      f'[[cameras]]\nid = "shelf"\nsource = "{media / "video_640x480.mp4"}"\ninfer_fps = 5\n\n'
                      f'[[cameras]]\nid = "door"\nsource = "{tmp / "still.avi"}"\nmodel = "faces"\ninfer_fps = 5\n\n'
                      f'[api]\nlisten = "{http}"\ngrpc_listen = "{grpc}"\ntoken_file = "{token}"\n')
    return config


def wait_ready(url: str, headers: dict[str, str] | None = None, timeout: float = 120, ctx: Any = None) -> None:
    stop = threading.Event()
    for _ in range(int(timeout * 4)):
        try:
            req = urllib.request.Request(f"{url}/v2/health/ready", headers=headers or {})
            with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        stop.wait(0.25)
    raise AssertionError(f"{url}: the API never became ready")


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory, bundle: Path, face_bundle: Path, mesh_bundle: Path,
           media: Path) -> Iterator[Device]:
    tmp = tmp_path_factory.mktemp("api")
    still = still_video(sorted((media / "faces_val").iterdir())[3], tmp / "still.avi")
    broker = Broker(free_port(), tmp / "mosquitto").start()
    recorder = Recorder(broker.port, ["edge/#"], client_id="api-recorder")
    http, grpc = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    bundles = {"default": bundle, "faces": face_bundle, "mesh": mesh_bundle}
    pool = active()
    if pool is not None:  # the named models start warm too (start_agent seeds the default one)
        pool.seed(tmp / "state", face_bundle, tmp / "still.avi")
        pool.seed(tmp / "state", mesh_bundle, None)
    proc = start_agent(broker, bundle, media, tmp / "state", DEVICE, "--config",
                       str(_config(tmp, bundles, media, http, grpc)), env=FAST, source=None)
    try:
        recorder.wait_for(lambda t, d: t == f"edge/{DEVICE}/status" and d["state"] == "online"
                          and len(d.get("other_models") or []) == 2, 120)
        wait_ready(f"http://{http}")
        yield Device(broker, recorder, f"http://{http}", grpc, bundles, still, proc)
    finally:
        proc.terminate()
        proc.wait(30)
        recorder.close()
        broker.kill()


def _golden(manifest: Any, bundle: Path, count: int = 2) -> np.ndarray:
    images = np.load(bundle / manifest.golden.images)[:count]
    return np.asarray(to_input(images, manifest.preprocess, source_input(manifest)))


@pytest.mark.parametrize("model", ["default", "faces", "mesh"])
def test_tritonclient_http_and_grpc_get_the_runtime_s_outputs(device: Device, model: str) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    direct, manifest = device.direct(model)
    source = source_input(manifest)
    x = _golden(manifest, device.bundles[model])
    want = direct.infer_tensor(x, source)
    direct.close()
    http = httpclient.InferenceServerClient(device.http.removeprefix("http://"))
    meta = http.get_model_metadata(manifest.name, headers=dict(AUTH))
    assert meta["inputs"][0]["name"] == source.name and meta["versions"] == [str(manifest.version)]
    inp = httpclient.InferInput(source.name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    got = http.infer(manifest.name, [inp], headers=dict(AUTH))
    rpc = grpcclient.InferenceServerClient(device.grpc)
    ginp = grpcclient.InferInput(source.name, list(x.shape), "FP32")
    ginp.set_data_from_numpy(x)
    gotten = rpc.infer(manifest.name, [ginp], headers={"authorization": f"Bearer {TOKEN}"})
    for name, value in want.items():
        assert np.allclose(got.as_numpy(name), value, rtol=1e-3, atol=1e-4), name
        assert np.allclose(gotten.as_numpy(name), value, rtol=1e-3, atol=1e-4), name


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(data)


def test_an_image_as_bytes_gets_the_task_s_answer(device: Device) -> None:
    import tritonclient.http as httpclient

    direct, manifest = device.direct("default")
    photo = device.still
    outputs, tf = direct.infer_frame(cv2.imdecode(np.frombuffer(_jpeg(photo), np.uint8), cv2.IMREAD_COLOR))
    want = direct.post.decode(outputs, 0, direct.size, tf, manifest.labels).model_dump(mode="json")
    direct.close()
    client = httpclient.InferenceServerClient(device.http.removeprefix("http://"))
    inp = httpclient.InferInput("image", [1], "BYTES")
    inp.set_data_from_numpy(np.array([_jpeg(photo)], dtype=np.object_), binary_data=True)
    got = client.infer(manifest.name, [inp], headers=dict(AUTH))
    answer = json.loads(got.as_numpy("answer")[0])
    assert answer["top"][0][0] == want["top"][0][0]


def _post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_tf_serving_rows_columns_and_images(device: Device) -> None:
    direct, manifest = device.direct("default")
    x = _golden(manifest, device.bundles["default"])
    want = next(iter(direct.infer_tensor(x, source_input(manifest)).values()))
    direct.close()
    url = f"{device.http}/v1/models/{manifest.name}"
    status, doc = _post(f"{url}:predict", json.dumps({"instances": x.tolist()}).encode(), AUTH)
    assert status == 200 and np.allclose(doc["predictions"], want, rtol=1e-3, atol=1e-4)
    status, doc = _post(f"{url}/versions/{manifest.version}:predict",
                        json.dumps({"inputs": {source_input(manifest).name: x.tolist()}}).encode(), AUTH)
    assert status == 200 and np.allclose(doc["outputs"], want, rtol=1e-3, atol=1e-4)
    b64 = base64.b64encode(_jpeg(device.still)).decode()
    status, doc = _post(f"{url}:predict", json.dumps({"instances": [{"b64": b64}]}).encode(), AUTH)
    assert status == 200 and len(doc["predictions"][0]["top"]) == 5
    req = urllib.request.Request(url, headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["model_version_status"][0]["state"] == "AVAILABLE"


def _form(fields: dict[str, str], image: bytes | None) -> tuple[bytes, str]:
    boundary = "----edgectl-test"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    if image is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
                     f"Content-Type: image/jpeg\r\n\r\n".encode() + image + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _deepstack(device: Device, fields: dict[str, str], image: bytes | None, path: str = "detection"
               ) -> tuple[int, Any]:
    body, ctype = _form(fields, image)
    return _post(f"{device.http}/v1/vision/{path}", body, {"Content-Type": ctype})


def _png(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", frame)
    assert ok
    return bytes(data)


def _same_boxes(predictions: list[dict[str, Any]], detections: list[dict[str, Any]]) -> None:
    got = sorted(predictions, key=lambda p: p["x_min"])
    want = sorted(detections, key=lambda d: d["box"][0])
    assert len(got) == len(want) and got, (got, want)
    for g, w in zip(got, want, strict=True):
        assert g["label"] == w["label"] == "face"
        assert np.allclose([g["x_min"], g["y_min"], g["x_max"], g["y_max"]], w["box"], atol=2), (g, w)


def test_deepstack_detection_matches_the_camera_path(device: Device) -> None:
    since = device.recorder.mark()  # a fresh answer: the one of the candidate serving now
    camera = device.recorder.wait_for(lambda t, d: t == f"edge/{DEVICE}/results" and d["camera"] == "door"
                                      and bool(d["detections"]), 60, since)
    # The camera's own pixels, losslessly (PNG): BlazeFace moves a box by 16 px between a frame and its JPEG.
    status, doc = _deepstack(device, {"api_key": TOKEN, "min_confidence": "0.3"}, _png(device.still))
    assert status == 200 and doc["success"] is True
    _same_boxes(doc["predictions"], [d for d in camera["detections"] if d["score"] >= 0.3])
    direct, manifest = device.direct("faces")  # and a JPEG gets what the serving runtime answers on it
    jpeg = _jpeg(device.still)
    outputs, tf = direct.infer_frame(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR))
    want = direct.post.decode(outputs, 0, direct.size, tf, manifest.labels).model_dump()["detections"]
    direct.close()
    status, doc = _deepstack(device, {"api_key": TOKEN, "min_confidence": "0.3"}, jpeg)
    _same_boxes(doc["predictions"], [d for d in want if d["score"] >= 0.3])
    status, doc = _deepstack(device, {"api_key": TOKEN, "min_confidence": "1"}, _jpeg(device.still))
    assert status == 200 and doc["predictions"] == []
    status, doc = _deepstack(device, {"api_key": TOKEN}, _jpeg(device.still), "scene")
    assert status == 200 and doc["success"] and doc["label"]


def test_the_cameras_latest_answers_and_snapshot(device: Device) -> None:
    req = urllib.request.Request(f"{device.http}/cameras/door", headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["model"] == "blazeface-short"
    req = urllib.request.Request(f"{device.http}/cameras/door/snapshot.jpg", headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert cv2.imdecode(np.frombuffer(resp.read(), np.uint8), cv2.IMREAD_COLOR).shape == (480, 640, 3)
    req = urllib.request.Request(f"{device.http}/cameras/shelf/events", headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        line = resp.readline()
        assert line.startswith(b"data: ") and json.loads(line[6:])["camera"] == "shelf"
    req = urllib.request.Request(f"{device.http}/metrics", headers=AUTH)
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    assert "edge_agent_api_requests_total" in text
    lint(text)


BAD: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("/v2/models/efficientnet-lite0/infer", b"{nope", {}, 400, "body"),
    ("/v2/models/efficientnet-lite0/infer",
     b'{"inputs": [{"name": "images", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}', {}, 400, "inputs"),
    ("/v2/models/efficientnet-lite0/infer",
     b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["not an image"]}]}', {}, 400,
     "inputs[0] element 0"),
    ("/v2/models/efficientnet-lite0/versions/7/infer", b'{"inputs": []}', {}, 404, "version 7"),
    ("/v2/models/nobody/infer", b"{}", {}, 404, "nobody"),
    ("/v2/models/efficientnet-lite0/infer", b"{}", {"Inference-Header-Content-Length": "99"}, 400,
     "Inference-Header-Content-Length"),
    ("/v1/models/efficientnet-lite0:predict", b'{"instances": [{"b64": "%%%"}]}', {}, 400, "b64"),
    ("/v1/models/efficientnet-lite0:predict", b'{"instances": [[1, 2]]}', {}, 400, "shape"),
    ("/v1/models/efficientnet-lite0:predict", b'{"something": 1}', {}, 400, "instances"),
]


@pytest.mark.parametrize(("path", "body", "headers", "status", "field"), BAD)
def test_a_bad_request_is_a_4xx_that_names_the_field(device: Device, path: str, body: bytes,
                                                    headers: dict[str, str], status: int, field: str) -> None:
    got, doc = _post(f"{device.http}{path}", body, {**AUTH, **headers})
    assert got == status and field in doc["error"] and "Traceback" not in doc["error"], doc


def test_refusals_without_the_token_and_the_cameras_keep_their_rate(device: Device) -> None:
    import grpc
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    assert _post(f"{device.http}/v2/models/efficientnet-lite0/infer", b"{}")[0] == 401
    assert _post(f"{device.http}/v2/models/efficientnet-lite0/infer", b"{}", {"Authorization": "Bearer x"})[0] == 401
    status, doc = _deepstack(device, {}, _jpeg(device.still))
    assert status == 401 and doc["success"] is False and "api_key" in doc["error"]
    assert _deepstack(device, {"api_key": TOKEN}, b"not a jpeg")[0] == 400
    with pytest.raises(InferenceServerException) as err:
        grpcclient.InferenceServerClient(device.grpc).get_model_metadata("efficientnet-lite0")
    assert err.value.status() == str(grpc.StatusCode.UNAUTHENTICATED)
    since = device.recorder.mark()
    tele = device.recorder.wait_for(lambda t, d: t == f"edge/{DEVICE}/telemetry" and "shelf" in d["cameras"],
                                    30, since)
    assert tele["cameras"]["shelf"]["fps"] >= 3.5, tele["cameras"]["shelf"]
    assert tele["api"]["efficientnet-lite0"]["requests"] > 0


def test_a_push_under_requests_fails_none(device: Device, bundle_v2: Path) -> None:
    """Requests in a loop on two threads while v2 is pushed, verified, selected and swapped in."""
    stop, results = threading.Event(), []
    x = _golden(open_bundle(device.bundles["default"]).manifest, device.bundles["default"], 1)
    body = json.dumps({"inputs": [{"name": source_input(open_bundle(bundle_v2).manifest).name,
                                   "shape": list(x.shape), "datatype": "FP32", "data": x.tolist()}]}).encode()

    def load() -> None:
        while not stop.is_set():
            results.append(_post(f"{device.http}/v2/models/efficientnet-lite0/infer", body, AUTH))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert push(device.broker, bundle_v2, DEVICE)[0]["result"] == "committed"
        serving(device.recorder, DEVICE, 2, 60)
        stop.wait(2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failed = [r for r in results if r[0] != 200]
    assert not failed, failed[:3]
    assert {r[1]["model_version"] for r in results} == {"1", "2"}


def test_mtls_refuses_a_client_without_a_certificate(own_broker: Broker, bundle: Path, media: Path,
                                                     tmp_path: Path) -> None:
    import ssl

    from fleet import ca

    pki = tmp_path / "pki"
    ca.init(pki)
    cert, key = ca.issue("device", pki, server_hosts=["127.0.0.1"], directory=pki)
    client_cert, client_key = ca.issue("kiosk", pki, directory=pki)
    http = f"127.0.0.1:{free_port()}"
    config = tmp_path / "agent.toml"
    config.write_text(f'[api]\nlisten = "{http}"\ncert_file = "{cert}"\nkey_file = "{key}"\n'
                      f'client_ca = "{pki / "ca.pem"}"\n')
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "tls1", "--config", str(config), env=FAST)
    try:
        good = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        good.load_cert_chain(str(client_cert), str(client_key))
        wait_ready(f"https://{http}", ctx=good)  # up, and a client with a certificate gets in
        bare = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            urllib.request.urlopen(f"https://{http}/v2/health/ready", timeout=10, context=bare)
    finally:
        proc.terminate()
        proc.wait(30)
