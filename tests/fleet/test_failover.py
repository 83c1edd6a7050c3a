"""Two broker nodes on loopback: the agent and edgectl are given both; the agent's node is killed mid-run and
the agent carries on through the other within seconds, without losing telemetry; status finds it there."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet.mqtt import BrokerSettings, MqttClient
from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent

runner = CliRunner()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    a, b = Broker(free_port(), tmp_path / "a").start(), Broker(free_port(), tmp_path / "b").start()
    yield a, b
    a.kill()
    b.kill()


def _seqs(rec: Recorder, device: str) -> set[int]:
    return {int(d["seq"]) for d in rec.of(f"{device}/telemetry")}


def test_the_client_moves_to_the_next_node_and_back(nodes: tuple[Broker, Broker]) -> None:
    a, b = nodes
    client = MqttClient("unit-failover", BrokerSettings.from_urls([a.url, b.url]))
    assert client.start(wait_s=5) and client.broker.port == a.port
    a.kill()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not (client.connected.is_set() and client.broker.port == b.port):
        client.connected.wait(0.1)
    assert client.connected.is_set() and client.broker.port == b.port
    client.stop()


def test_a_list_in_one_flag_and_repeated_flags_are_the_same() -> None:
    assert [s.port for s in BrokerSettings.from_urls("mqtt://h:1, mqtt://h:2")] == [1, 2]
    assert [s.port for s in BrokerSettings.from_urls(["mqtt://h:1,mqtt://h:2", "mqtt://h:3"])] == [1, 2, 3]


@pytest.mark.slow
def test_agent_fails_over_when_its_node_dies(nodes: tuple[Broker, Broker], bundle: Path, media: Path,
                                             tmp_path: Path) -> None:
    a, b = nodes
    on_a, on_b = Recorder(a.port, ["edge/#"], "rec-a"), Recorder(b.port, ["edge/#"], "rec-b")
    agent = start_agent(a, bundle, media, tmp_path / "state", "f1", "--broker", b.url, env=FAST)
    try:
        on_a.wait_for(lambda t, d: t == "edge/f1/telemetry" and int(d["seq"]) >= 3, 90)
        a.kill()
        killed = time.monotonic()
        on_b.wait_for(lambda t, d: t == "edge/f1/telemetry", 20)
        took = time.monotonic() - killed
        on_b.wait_for(lambda t, d: t == "edge/f1/telemetry" and int(d["seq"]) >= max(_seqs(on_a, "f1")) + 3, 20)
        seen = _seqs(on_a, "f1") | _seqs(on_b, "f1")
        assert set(range(min(seen), max(seen) + 1)) <= seen, "telemetry lost in the failover"
        assert took < 10, f"telemetry flowed again {took:.1f} s after the node died"
        result = runner.invoke(app, ["status", "--broker", a.url, "--broker", b.url, "--json"])
        rows = {r["device"]: r for r in json.loads(result.stdout)}
        assert rows["f1"]["state"] == "online", rows
    finally:
        agent.kill()
        on_a.close()
        on_b.close()
