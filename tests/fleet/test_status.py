"""`edgectl status` and `edgectl schema` against retained messages on a real broker."""

from __future__ import annotations

import json
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet.messages import ModelRef, RuntimeRef, Status
from tests.support.broker import Broker

runner = CliRunner()


def publish_statuses(port: int, statuses: list[Status]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim")
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(f"edge/{s.device}/status", s.model_dump_json(), qos=1, retain=True) for s in statuses]
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def status(device: str, state: str = "online", ts: float | None = None, groups: list[str] | None = None) -> Status:
    return Status(device=device, state=state, ts=ts or time.time(), agent_version="0.1.0", groups=groups or [],  # type: ignore[arg-type]
                  model=ModelRef(name="m", version=3, digest="d" * 64),
                  runtime=RuntimeRef(target="onnx-int8", runtime="onnxruntime", device="cpu",
                                     executes_on="CPUExecutionProvider"),
                  metrics={"fps": 14.9, "p95_ms": 4.2}, telemetry_interval_s=1)


def test_status_json_shape_and_exit_code(own_broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path))
    publish_statuses(own_broker.port, [status("a1", groups=["line1"]), status("a2", "offline"),
                                       status("a3", ts=time.time() - 20), status("a4", ts=time.time() - 600)])
    result = runner.invoke(app, ["status", "--broker", own_broker.url, "--json"])
    assert result.exit_code == 1  # a2 offline, a3 stale
    rows = {r["device"]: r for r in json.loads(result.stdout)}
    assert rows["a1"]["state"] == "online" and rows["a2"]["state"] == "offline" and rows["a3"]["state"] == "stale"
    assert rows["a4"]["state"] == "offline"  # silent for ten intervals: gone, though no will said so
    keys = {"device", "state", "last_seen_s", "model", "version", "runtime", "device_kind", "fps", "p95_ms",
            "update_phase", "agent_version"}
    assert keys <= set(rows["a1"])
    assert rows["a1"]["version"] == 3 and rows["a1"]["fps"] == 14.9
    healthy = runner.invoke(app, ["status", "--broker", own_broker.url, "--group", "line1", "--json"])
    assert healthy.exit_code == 0 and [r["device"] for r in json.loads(healthy.stdout)] == ["a1"]


def test_status_returns_fast_for_many_devices(own_broker: Broker, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path))
    publish_statuses(own_broker.port, [status(f"d{i:04d}") for i in range(300)])
    runner.invoke(app, ["status", "--broker", own_broker.url, "--json"])  # learns the devices
    result = runner.invoke(app, ["status", "--broker", own_broker.url, "--json"])
    assert len(json.loads(result.stdout)) == 300


def test_unreachable_broker_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.broker import free_port

    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path))
    import fleet.status as st

    monkeypatch.setattr(st, "collect", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("cannot reach x")))
    result = runner.invoke(app, ["status", "--broker", f"mqtt://127.0.0.1:{free_port()}"])
    assert result.exit_code == 2 and "cannot reach" in result.output


def test_schema_export(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "--out", str(tmp_path)])
    assert result.exit_code == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"status.schema.json", "telemetry.schema.json", "desired.schema.json", "events.schema.json"} <= names
    doc = json.loads((tmp_path / "desired.schema.json").read_text())
    assert doc["additionalProperties"] is False
