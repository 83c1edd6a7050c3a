"""The fleet protocol on brokers that speak only MQTT 3.1.1 — NATS 2.9 and RabbitMQ 3.10 with their MQTT
plugins — each started here from a temp config on free ports (never the machine's own instances). The
agent and edgectl find 3.1.1 by trying, without being told."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet.mqtt import BrokerSettings, MqttClient
from tests.support.interop import NatsBroker, RabbitBroker
from tests.support.mqtt import FAST, Recorder, start_agent


@pytest.fixture(params=["nats", "rabbitmq"])
def broker311(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NatsBroker | RabbitBroker]:
    if request.param == "nats":
        if shutil.which("nats-server") is None:
            pytest.skip("nats-server is not installed (Debian package nats-server)")
        broker: NatsBroker | RabbitBroker = NatsBroker(tmp_path / "nats")
    else:
        if shutil.which("rabbitmq-server") is None or os.getuid() != 0:
            pytest.skip("rabbitmq-server is not installed (or not root to start a private node)")
        broker = RabbitBroker()
    yield broker
    broker.stop()


def test_client_falls_back_to_3_1_1(broker311: NatsBroker | RabbitBroker) -> None:
    client = MqttClient("probe", BrokerSettings(port=broker311.port))
    try:
        assert client.start(20)
        assert client.protocol == "3.1.1"
    finally:
        client.stop()


@pytest.mark.slow
def test_agent_status_and_push(broker311: NatsBroker | RabbitBroker, bundle: Path, bundle_v2: Path, media: Path,
                               tmp_path: Path) -> None:
    nats = broker311
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


@pytest.mark.slow
def test_status_at_the_default_interval_sees_the_device_every_time(broker311: NatsBroker | RabbitBroker,
                                                                   bundle: Path, media: Path,
                                                                   tmp_path: Path) -> None:
    """RabbitMQ delivers no retained message to a wildcard subscription: status asks every device instead."""
    rec = Recorder(broker311.port, ["edge/#"], client_id="rec")
    agent = start_agent(broker311, bundle, media, tmp_path / "state", "n2", "--telemetry-interval", "10",  # type: ignore[arg-type]
                        env=FAST)
    try:
        rec.wait_for(lambda t, d: t == "edge/n2/status" and d.get("state") == "online" and d.get("model"), 120)
        seen = []
        for _ in range(10):
            result = CliRunner().invoke(app, ["status", "--broker", broker311.url, "--json"])
            seen.append({r["device"]: r["state"] for r in json.loads(result.stdout)}.get("n2"))
        assert seen == ["online"] * 10
    finally:
        agent.kill()
        rec.close()


def test_gc_clears_what_no_device_desires(broker311: NatsBroker | RabbitBroker, bundle: Path) -> None:
    """The bundle index is read on its exact topic: gc works where retained wildcards do not."""
    from fleet.push import Pusher
    from fleet.topics import Topics

    pusher = Pusher(BrokerSettings.from_url(broker311.url), Topics())
    pusher.connect()
    packed, _desired = pusher.publish_bundle(bundle)  # no device is told: garbage at once
    pusher.close()
    result = CliRunner().invoke(app, ["gc", "--broker", broker311.url, "--wait", "1"])
    assert result.exit_code == 0 and "cleared 1 bundle" in result.output, result.output
    again = CliRunner().invoke(app, ["gc", "--broker", broker311.url, "--wait", "1"])
    assert "cleared 0 bundle" in again.output, again.output
    assert packed.digest
