"""The fleet protocol on a broker that speaks only MQTT 3.1.1: NATS 2.9 with MQTT enabled, started here
from a temp config on free ports. The agent and edgectl find 3.1.1 by trying, without being told."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleet.cli import app
from fleet.mqtt import BrokerSettings, MqttClient
from tests.broker import free_port
from tests.mqtt_helpers import FAST, Recorder, start_agent


class NatsBroker:
    def __init__(self, workdir: Path) -> None:
        self.port, self.client_port = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "nats.conf"
        conf.write_text(f'server_name: edgectl_test_{self.port}\nlisten: 127.0.0.1:{self.client_port}\n'
                        f'jetstream {{ store_dir: "{workdir / "js"}" }}\nmqtt {{ listen: 127.0.0.1:{self.port} }}\n')
        self.proc = subprocess.Popen([shutil.which("nats-server") or "nats-server", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=(workdir / "nats.log").open("wb"))
        self.url = f"mqtt://127.0.0.1:{self.port}"
        wait = threading.Event()
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                wait.wait(0.1)
        raise RuntimeError("nats-server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsBroker]:
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    broker = NatsBroker(tmp_path / "nats")
    yield broker
    broker.stop()


def test_client_falls_back_to_3_1_1(nats: NatsBroker) -> None:
    client = MqttClient("probe", BrokerSettings(port=nats.port))
    try:
        assert client.start(20)
        assert client.protocol == "3.1.1"
    finally:
        client.stop()


@pytest.mark.slow
def test_agent_status_and_push_over_nats(nats: NatsBroker, bundle: Path, bundle_v2: Path, media: Path,
                                        tmp_path: Path) -> None:
    rec = Recorder(nats.port, ["edge/#"], client_id="rec")
    agent = start_agent(nats, bundle, media, tmp_path / "state", "n1", env=FAST)  # type: ignore[arg-type]
    try:
        rec.wait_for(lambda t, d: t == "edge/n1/status" and d.get("state") == "online" and d.get("model"), 120)
        rec.wait_for(lambda t, d: t == "edge/n1/telemetry" and d["seq"] >= 2, 30)
        result = CliRunner().invoke(app, ["status", "--broker", nats.url, "--json"])
        rows = {r["device"]: r for r in json.loads(result.stdout)}
        assert rows["n1"]["state"] == "online" and rows["n1"]["version"] == 1
        pushed = CliRunner().invoke(app, ["push", str(bundle_v2), "--device", "n1", "--broker", nats.url,
                                          "--timeout", "120", "--json"])
        assert json.loads(pushed.stdout)[0]["result"] == "committed", pushed.output
        rec.wait_for(lambda t, d: t == "edge/n1/status" and (d.get("model") or {}).get("version") == 2, 30)
    finally:
        agent.kill()
        rec.close()
