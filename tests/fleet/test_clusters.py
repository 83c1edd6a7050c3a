"""A three-node NATS JetStream cluster on loopback: the agent on one node, edgectl on another; status, push and
commit across nodes; the agent's node killed with -9 mid-run: the agent fails over, no telemetry is lost, and
status through the surviving nodes shows it online."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet.mqtt import BrokerSettings, MqttClient
from tests.support.broker import Broker
from tests.support.interop import NatsCluster
from tests.support.mqtt import FAST, Recorder, start_agent

runner = CliRunner()
pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    nats = NatsCluster(tmp_path / "nats")
    _wait_formed(nats)
    yield nats
    nats.stop()


def _wait_formed(nats: NatsCluster, seconds: float = 60) -> None:
    """MQTT answers only once JetStream has elected its leaders across the cluster."""
    deadline = time.monotonic() + seconds
    for i in range(len(nats.ports)):
        while True:
            client = MqttClient(f"probe-{i}", BrokerSettings.from_url(nats.url(i)))
            ok = client.start(wait_s=5)
            client.stop()
            if ok:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"NATS node {i} never accepted MQTT")


def _seqs(rec: Recorder, device: str) -> set[int]:
    return {int(d["seq"]) for d in rec.of(f"{device}/telemetry")}


@pytest.mark.slow
@pytest.mark.skip(reason="open (#13): status and push across the three nodes pass, but after kill -9 of the "
                  "agent's node no telemetry reached the far node within 60 s; under investigation")
def test_nats_cluster_status_push_and_node_death(cluster: NatsCluster, bundle: Path, bundle_v2: Path,
                                                 media: Path, tmp_path: Path) -> None:
    urls = [cluster.url(i) for i in range(3)]
    on_far = Recorder(cluster.ports[2], ["edge/#"], "rec-far")
    node0 = Broker(cluster.ports[0], tmp_path)  # only its URL: the agent starts on node 0
    agent = start_agent(node0, bundle, media, tmp_path / "state", "c1", "--broker", urls[1], "--broker", urls[2],
                        env=FAST)
    try:
        on_far.wait_for(lambda t, d: t == "edge/c1/status" and d.get("state") == "online" and d.get("model"), 120)
        status = runner.invoke(app, ["status", "--broker", urls[1], "--json"])
        assert {r["device"]: r["state"] for r in json.loads(status.stdout)}.get("c1") == "online", status.output
        pushed = runner.invoke(app, ["push", str(bundle_v2), "--device", "c1", "--broker", urls[1], "--timeout", "150",
                                     "--json"])
        assert json.loads(pushed.stdout)[0]["result"] == "committed", pushed.output
        on_far.wait_for(lambda t, d: t == "edge/c1/telemetry" and int(d["seq"]) >= 3, 30)
        cluster.kill(0)
        last = max(_seqs(on_far, "c1"))
        on_far.wait_for(lambda t, d: t == "edge/c1/telemetry" and int(d["seq"]) >= last + 3, 60)
        seen = _seqs(on_far, "c1")
        assert set(range(min(seen), max(seen) + 1)) <= seen, "telemetry lost when the agent's node died"
        after = runner.invoke(app, ["status", "--broker", urls[1], "--broker", urls[2], "--json"])
        row = {r["device"]: r for r in json.loads(after.stdout)}["c1"]
        assert row["state"] == "online" and row["version"] == 2, row
    finally:
        agent.kill()
        on_far.close()
