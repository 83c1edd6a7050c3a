"""The fleet protocol on brokers that speak only MQTT 3.1.1 — NATS 2.9 and RabbitMQ 3.10 with their MQTT
plugins — each started here from a temp config on free ports (never the machine's own instances). The
agent and edgectl find 3.1.1 by trying, without being told."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
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


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float, what: str) -> None:
    wait = threading.Event()
    for _ in range(int(seconds * 10)):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            wait.wait(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {seconds} s")


class RabbitBroker:
    """A private RabbitMQ node (its own name, ports and data dir) with the MQTT plugin."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: its parents are 0700 root, and the node runs as user rabbitmq.
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="edgectl-rabbitmq-"))
        self.port, amqp, dist = free_port(), free_port(), free_port()
        (workdir / "rabbitmq.conf").write_text(f"listeners.tcp.default = {amqp}\nmqtt.listeners.tcp.default = "
                                               f"{self.port}\nmqtt.allow_anonymous = true\nloopback_users = none\n")
        (workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        env = {**os.environ, "RABBITMQ_NODENAME": f"edgectl{self.port}@localhost", "RABBITMQ_NODE_PORT": str(amqp),
               "RABBITMQ_DIST_PORT": str(dist), "RABBITMQ_CONFIG_FILE": str(workdir / "rabbitmq"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(workdir / "enabled_plugins")}
        for key, sub in (("MNESIA_BASE", "mnesia"), ("LOG_BASE", "log"), ("FEATURE_FLAGS_FILE", "ff"),
                         ("QUORUM_DIR", "quorum"), ("STREAM_DIR", "stream"), ("PLUGINS_EXPAND_DIR", "plugins"),
                         ("PID_FILE", "pid")):
            env[f"RABBITMQ_{key}"] = str(workdir / sub)
        (workdir / "mnesia").mkdir()
        (workdir / "log").mkdir()
        user = pwd.getpwnam("rabbitmq")
        for path in [workdir, *workdir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)  # Debian's wrapper runs the node as user rabbitmq
        self.proc = subprocess.Popen(["rabbitmq-server"], env=env, stdout=(workdir / "out").open("wb"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"mqtt://127.0.0.1:{self.port}"
        wait_port(self.port, self.proc, 90, "rabbitmq-server")

    def stop(self) -> None:
        # Debian's wrapper starts the node through su, in a session of its own: killing our process group
        # left the node running. Kill the whole tree, found while it is still one.
        import psutil

        tree = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(tree, timeout=10)
        self.proc.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


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
