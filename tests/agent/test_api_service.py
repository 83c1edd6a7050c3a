"""The API's parts on the fake runtime: the KServe v2 codec, the config's safety rules, the queue, the deadline,
batching and a swap under a request; then the HTTP server itself (real uvicorn on a free loopback port)."""

from __future__ import annotations

import json
import struct
import threading
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from agent.api.cameras import Latest
from agent.api.registry import Api
from agent.api.server import HttpServer, make_app
from agent.api.service import ModelService
from agent.api.settings import ApiConfig
from agent.api.tensors import read_request, write_response
from agent.config import load
from agent.errors import ApiError, Busy, ConfigError, Late
from agent.inference.engine import Engine, Slot
from runtimes.bundle import open_bundle
from runtimes.model import LoadedModel
from runtimes.signature import source_input
from tests.support import fakebundle
from tests.support.broker import free_port


class Host:
    """A hosted model as the API sees it: a name and what serves (swappable)."""

    def __init__(self, root: Path, options: dict[str, Any]) -> None:
        self.name, self.root, self.options = "default", root, options
        self.pipelines: list[Any] = []
        self.serving: Any = self.fresh()

    def fresh(self) -> Any:
        bundle = open_bundle(self.root)
        art = bundle.manifest.artifacts[0]
        model = LoadedModel.load(bundle.manifest.preprocess, bundle.manifest.postprocess, art,
                                 bundle.artifact_files(art), "fake", self.options)
        return SimpleNamespace(bundle=bundle, engine=Engine(Slot(art.target, model), None,
                                                            labels=bundle.manifest.labels))


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    return fakebundle.make(tmp_path / "b", {"fake-fp32": {}})


def _x(batch: int = 1) -> np.ndarray:
    return np.random.default_rng(batch).normal(size=(batch, 3, 8, 8)).astype(np.float32)


def test_json_and_binary_tensors_round_trip() -> None:
    x = _x(2)
    doc = {"inputs": [{"name": "x", "shape": [2, 3, 8, 8], "datatype": "FP32", "data": x.tolist()}]}
    _, [t] = read_request(json.dumps(doc).encode(), None)
    assert np.array_equal(t.value, x)
    head = json.dumps({"inputs": [{"name": "x", "shape": [2, 3, 8, 8], "datatype": "FP32",
                                   "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    _, [b] = read_request(head + x.tobytes(), str(len(head)))
    assert np.array_equal(b.value, x)
    body, length = write_response({}, {"y": x, "answer": [b"{}", b"[1]"]}, {"y": True, "answer": False})
    assert length is not None and body[length:] == x.tobytes()
    assert json.loads(body[:length])["outputs"][1]["data"] == ["{}", "[1]"]


def _binary(doc: dict[str, Any], tail: bytes) -> tuple[bytes, str]:
    head = json.dumps(doc).encode()
    return head + tail, str(len(head))


TRUNCATED = _binary({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32",
                                 "parameters": {"binary_data_size": 16}}]}, b"\0\0")
CUT_BYTES = _binary({"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES",
                                 "parameters": {"binary_data_size": 6}}]}, b"\x09\0\0\0ab")


@pytest.mark.parametrize(("body", "header", "field"), [
    (b"{not json", None, "body"),
    (b'{"inputs": []}', None, "inputs"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP33", "data": [1]}]}', None, "inputs[0].datatype"),
    (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}', None, "inputs[0].data"),
    (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}]}', None, "inputs[0].data"),
    (b'{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP32", "data": [1]}]}', None, "inputs[0].shape"),
    (*TRUNCATED, "binary_data_size"),
    (b'{}', "999", "Inference-Header-Content-Length"),
    (*CUT_BYTES, "inputs[0]"),
])
def test_each_malformed_request_names_its_field(body: bytes, header: str | None, field: str) -> None:
    with pytest.raises(ApiError) as err:
        read_request(body, header)
    assert err.value.status == 400 and field in str(err.value), str(err.value)


def test_beyond_loopback_needs_a_token_or_client_certificates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"api.*beyond loopback needs token_file or client_ca"):
        load(None, {"api": {"listen": "0.0.0.0:8000"}}, environ={})
    with pytest.raises(ConfigError, match=r"api.listen.*HOST:PORT"):
        load(None, {"api": {"listen": "8000"}}, environ={})
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    cfg = load(None, {"api": {"listen": "0.0.0.0:8000", "token_file": str(token)}}, environ={})
    assert cfg.api.enabled and cfg.api.token() == "s3cret"
    assert not load(None, {}, environ={}).api.enabled


def test_tensor_and_image_requests_give_the_runtime_s_answer(fake: Path) -> None:
    host = Host(fake, {})
    svc = ModelService(host, ApiConfig())
    try:
        model = host.serving.engine.active.model
        source = source_input(host.serving.bundle.manifest)
        x = _x(3)
        assert np.allclose(svc.tensor(x)["y"], model.infer_tensor(x, source)["y"])
        frame = np.full((40, 60, 3), 90, np.uint8)
        out, tf = model.infer_frame(frame)
        assert svc.images([frame])[0] == model.post.decode(out, 0, model.size, tf, host.serving.engine.labels)
    finally:
        svc.stop()


def _together(n: int, call: Any) -> list[Any]:
    results: list[Any] = [None] * n

    def one(i: int) -> None:
        try:
            results[i] = call()
        except ApiError as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_full_queue_is_429_and_a_missed_deadline_503(fake: Path) -> None:
    host = Host(fake, {"latency_ms": 300})
    svc = ModelService(host, ApiConfig(queue=1, max_batch=1))
    try:
        results = _together(4, lambda: svc.tensor(_x()))
        assert any(isinstance(r, Busy) for r in results) and any(isinstance(r, dict) for r in results)
    finally:
        svc.stop()
    small = ModelService(Host(fake, {}), ApiConfig(max_request_batch=2))
    with pytest.raises(ApiError, match="max_request_batch"):
        small.tensor(_x(3))
    small.stop()
    late = ModelService(Host(fake, {"latency_ms": 300}), ApiConfig(deadline_ms=100))
    try:
        with pytest.raises(Late, match="100 ms"):
            late.tensor(_x())
        assert late.stats.snapshot().rejected == 1
    finally:
        late.stop()


def test_requests_waiting_together_are_one_batch(fake: Path) -> None:
    host = Host(fake, {"latency_ms": 100})
    calls: list[int] = []
    engine = host.serving.engine
    infer = engine.infer_tensor
    engine.infer_tensor = lambda t, s: calls.append(len(t)) or infer(t, s)  # type: ignore[method-assign]
    svc = ModelService(host, ApiConfig(max_batch=8))
    try:
        results = _together(6, lambda: svc.tensor(_x()))
        assert all(isinstance(r, dict) and r["y"].shape[0] == 1 for r in results)
        assert len(calls) < 6 and sum(calls) == 6
    finally:
        svc.stop()


def test_a_request_during_a_swap_is_answered_by_the_new_engine(fake: Path) -> None:
    host = Host(fake, {"latency_ms": 50})
    svc = ModelService(host, ApiConfig())
    try:
        old = host.serving
        host.serving = host.fresh()
        old.engine.close()  # what ModelHost.swap does: the old engine takes no more work
        assert svc.tensor(_x())["y"].shape == (1, fakebundle.CLASSES)
    finally:
        svc.stop()


def _get(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_http_server_serves_kserve_and_refuses_without_the_token(fake: Path, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0k")
    cfg = ApiConfig(listen=f"127.0.0.1:{free_port()}", token_file=token)
    api = Api({"default": ModelService(Host(fake, {}), cfg)})
    server = HttpServer(make_app(api, cfg, "t0k", Latest(), lambda: b""), cfg).start()
    base = f"http://{cfg.listen}"
    try:
        assert _get(f"{base}/v2/health/ready") == (200, {"ready": True})
        status, doc = _get(f"{base}/v2/models/fake")
        assert status == 401 and "bearer token" in doc["error"]
        status, doc = _get(f"{base}/v2/models/fake", "t0k")
        assert status == 200 and doc["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 3, 8, 8]}]
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 3, 8, 8], "datatype": "FP32",
                                       "data": _x().tolist()}]}).encode()
        status, doc = _get(f"{base}/v2/models/fake/versions/1/infer", "t0k", body)
        assert status == 200 and doc["outputs"][0]["shape"] == [1, fakebundle.CLASSES]
        assert _get(f"{base}/v2/models/fake/versions/9/infer", "t0k", body)[0] == 404
        assert _get(f"{base}/v2/models/nope", "t0k")[0] == 404
        bad = struct.pack("<I", 3)
        assert _get(f"{base}/v2/models/fake/infer", "t0k", bad)[0] == 400
    finally:
        server.stop()
        api.stop()
