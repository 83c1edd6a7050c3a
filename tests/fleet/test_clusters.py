"""Broker clusters on loopback, started here: a three-node NATS JetStream cluster and a two-node RabbitMQ cluster
(private nodes, their own epmd and cookie, `rabbitmqctl join_cluster`). On each: the agent on the first node,
edgectl and a recorder on others; status and push across nodes; the agent's node killed with -9 while a push is
transferring: the agent fails over, the update commits, no telemetry is lost (sequence numbers), and status
through the surviving nodes shows it online on the new version."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from tests.support.broker import Broker
from tests.support.interop import NatsCluster, RabbitCluster, wait_formed
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.updates import wait_chunks
from tests.support.web import Nginx

runner = CliRunner()
pytestmark = [pytest.mark.cluster, pytest.mark.slow]
Cluster = NatsCluster | RabbitCluster


@pytest.fixture(params=["nats", "rabbitmq"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "nats":
        if shutil.which("nats-server") is None:
            pytest.skip("nats-server is not installed (Debian package nats-server)")
        made: Cluster = NatsCluster(tmp_path / "nats")
    else:
        if shutil.which("rabbitmq-server") is None or os.getuid() != 0:
            pytest.skip("rabbitmq-server is not installed (or not root to start private nodes)")
        made = RabbitCluster()
    try:
        wait_formed(made)
        yield made
    finally:
        made.stop()


def _seqs(rec: Recorder, device: str) -> set[int]:
    return {int(d["seq"]) for d in rec.of(f"{device}/telemetry")}


def _push(cluster: Cluster, bundle: Path, site: Path, nginx: Nginx, out: list[dict[str, object]]) -> None:
    """Through a node the agent is not on, the bytes from a web server (a RabbitMQ cluster keeps retained
    chunks on the node they were published to; the HTTP path is the cluster's way)."""
    result = runner.invoke(app, ["push", str(bundle), "--device", "c1", "--broker", cluster.url(1), "--timeout",
                                 "180", "--http", nginx.url, "--http-dir", str(site), "--json"])
    out.extend(json.loads(result.stdout) if result.stdout else [{"result": "no output", "reason": result.output}])


def test_status_push_and_the_agents_node_killed_mid_transfer(cluster: Cluster, bundle: Path, bundle_v2: Path,
                                                             media: Path, tmp_path: Path) -> None:
    urls = [cluster.url(i) for i in range(len(cluster.ports))]
    far = len(urls) - 1
    on_far = Recorder(cluster.ports[far], ["edge/#"], "rec-far")
    site = tmp_path / "site"
    site.mkdir()
    nginx = Nginx(site, tmp_path / "nginx", rate="2m").start()  # slow enough to kill the node mid-transfer
    agent = start_agent(Broker(cluster.ports[0], tmp_path), bundle, media, tmp_path / "state", "c1",
                        *[a for url in urls[1:] for a in ("--broker", url)], env=FAST)
    try:
        on_far.wait_for(lambda t, d: t == "edge/c1/status" and d.get("state") == "online" and d.get("model"), 120)
        status = runner.invoke(app, ["status", "--broker", urls[1], "--json"])
        assert {r["device"]: r["state"] for r in json.loads(status.stdout)}.get("c1") == "online", status.output
        on_far.wait_for(lambda t, d: t == "edge/c1/telemetry" and int(d["seq"]) >= 3, 30)
        results: list[dict[str, object]] = []
        pusher = threading.Thread(target=_push, args=(cluster, bundle_v2, site, nginx, results))
        pusher.start()
        wait_chunks(tmp_path / "state" / "store" / "incoming", 2)
        last = max(_seqs(on_far, "c1"))
        cluster.kill(0)  # the agent's node dies with -9 while the bundle is transferring
        on_far.wait_for(lambda t, d: t == "edge/c1/telemetry" and int(d["seq"]) >= last + 3, 60)
        pusher.join(200)
        assert results and results[0]["result"] == "committed", results
        seen = _seqs(on_far, "c1")
        assert set(range(min(seen), max(seen) + 1)) <= seen, "telemetry lost when the agent's node died"
        after = runner.invoke(app, ["status", *[a for url in urls[1:] for a in ("--broker", url)], "--json"])
        row = {r["device"]: r for r in json.loads(after.stdout)}["c1"]
        assert row["state"] == "online" and row["version"] == 2, row
    finally:
        agent.kill()
        nginx.stop()
        on_far.close()
