"""The security recipe on a real mosquitto: per-device certificates, identity as username, ACL."""

from __future__ import annotations

import getpass
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from fleet import ca
from tests.support.broker import Broker, free_port


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    pki = tmp_path / "pki"
    ca.init(pki)
    ca.issue("broker", pki, server_hosts=["127.0.0.1", "localhost"], directory=pki)
    for name in ("d1", "d2", "edgectl-operator"):
        ca.issue(name, pki, directory=pki)
    (pki / "acl").write_text(ca.ACL.format(operator="edgectl-operator", prefix="edge"))
    port = free_port()
    broker = Broker(port, tmp_path / "mosq")
    conf = ca.mosquitto_config(port, pki / "ca.pem", pki / "broker.pem", pki / "broker.key", pki / "acl")
    broker.workdir.mkdir(parents=True)
    start_tls(broker, conf)
    yield broker, pki
    broker.stop()


def start_tls(broker: Broker, conf: str) -> None:
    import shutil
    import subprocess

    path = broker.workdir / "tls.conf"
    path.write_text(conf + f"user {getpass.getuser()}\n")
    broker.proc = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    broker._wait_ready()


def client(port: int, pki: Path, name: str, ca_file: Path | None = None) -> tuple[mqtt.Client, threading.Event]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{name}")
    c.tls_set(ca_certs=str(ca_file or pki / "ca.pem"), certfile=str(pki / f"{name}.pem"),
              keyfile=str(pki / f"{name}.key"), cert_reqs=ssl.CERT_REQUIRED)
    connected = threading.Event()
    c.on_connect = lambda _c, _u, _f, rc, _p: connected.set() if not rc.is_failure else None
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c, connected


def collect(c: mqtt.Client, topic: str) -> list[str]:
    got: list[str] = []
    c.on_message = lambda _c, _u, m: got.append(m.topic)
    done = threading.Event()
    c.on_subscribe = lambda *_: done.set()
    c.subscribe(topic, 1)
    done.wait(5)
    return got


def test_device_isolation(tls_broker: tuple[Broker, Path]) -> None:
    broker, pki = tls_broker
    op, op_ok = client(broker.port, pki, "edgectl-operator")
    d1, d1_ok = client(broker.port, pki, "d1")
    assert op_ok.wait(10) and d1_ok.wait(10)
    seen_by_operator = collect(op, "edge/#")
    seen_by_d1 = collect(d1, "edge/d2/#")
    d1.publish("edge/d1/status", b"{}", qos=1).wait_for_publish(5)   # allowed
    d1.publish("edge/d2/status", b"{}", qos=1).wait_for_publish(5)   # another device's topic
    d1.publish("edge/d1/desired", b"{}", qos=1).wait_for_publish(5)  # its own desired model
    d1.publish("edge/d1/desired/faces", b"{}", qos=1).wait_for_publish(5)  # nor a named model's
    op.publish("edge/d2/events", b"{}", qos=1).wait_for_publish(5)   # d1 must not read this
    op.publish("edge/d1/desired", b"{}", qos=1).wait_for_publish(5)  # the operator may
    threading.Event().wait(1.0)
    assert "edge/d1/status" in seen_by_operator
    assert "edge/d2/status" not in seen_by_operator
    assert seen_by_operator.count("edge/d1/desired") == 1  # only the operator's
    assert "edge/d1/desired/faces" not in seen_by_operator
    assert seen_by_d1 == []
    for c in (op, d1):
        c.loop_stop()
        c.disconnect()


def test_certificate_from_another_ca_is_refused(tls_broker: tuple[Broker, Path], tmp_path: Path) -> None:
    broker, pki = tls_broker
    rogue = tmp_path / "rogue"
    ca.init(rogue)
    ca.issue("d1", rogue, directory=rogue)
    connected = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="rogue")
    c.tls_set(ca_certs=str(pki / "ca.pem"), certfile=str(rogue / "d1.pem"), keyfile=str(rogue / "d1.key"))
    c.on_connect = lambda *_: connected.set()
    try:
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        assert not connected.wait(3)
    except (ssl.SSLError, OSError):
        pass  # refused during the handshake: also a pass
    finally:
        c.loop_stop()


def test_agent_client_connects_with_its_certificate(tls_broker: tuple[Broker, Path]) -> None:
    from fleet.mqtt import BrokerSettings, MqttClient

    broker, pki = tls_broker
    settings = BrokerSettings.from_url(f"mqtts://127.0.0.1:{broker.port}", ca_file=str(pki / "ca.pem"),
                                       cert_file=str(pki / "d1.pem"), key_file=str(pki / "d1.key"))
    agent_client = MqttClient("d1", settings)
    try:
        assert agent_client.start(15)
        assert agent_client.publish("edge/d1/status", b"{}") is not None
    finally:
        agent_client.stop()


@pytest.mark.slow
def test_agent_and_edgectl_end_to_end_over_mqtts(tls_broker: tuple[Broker, Path], bundle: Path, bundle_v2: Path,
                                                 media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole recipe: the agent with its device certificate, edgectl with the operator's, the ACL on."""
    import json

    from typer.testing import CliRunner

    from edgectl.app import app
    from tests.support.mqtt import FAST, start_agent

    broker, pki = tls_broker
    url = f"mqtts://127.0.0.1:{broker.port}"
    env = {**FAST, "EDGE_AGENT__BROKER__CA_FILE": str(pki / "ca.pem"),
           "EDGE_AGENT__BROKER__CERT_FILE": str(pki / "d1.pem"), "EDGE_AGENT__BROKER__KEY_FILE": str(pki / "d1.key")}
    agent = start_agent(broker, bundle, media, tmp_path / "state", "d1", "--broker", url, env=env)
    for var, name in (("EDGECTL_CA_FILE", "ca.pem"), ("EDGECTL_CERT_FILE", "edgectl-operator.pem"),
                      ("EDGECTL_KEY_FILE", "edgectl-operator.key")):
        monkeypatch.setenv(var, str(pki / name))
    runner = CliRunner()
    try:
        rows: list[dict[str, object]] = []
        for _ in range(60):
            result = runner.invoke(app, ["status", "--broker", url, "--json"])
            rows = json.loads(result.stdout) if result.stdout.strip() else []
            if rows and rows[0]["state"] == "online":
                break
            threading.Event().wait(1.0)
        assert rows and rows[0]["device"] == "d1" and rows[0]["state"] == "online", rows
        pushed = runner.invoke(app, ["push", str(bundle_v2), "--device", "d1", "--broker", url, "--json",
                                     "--timeout", "120"])
        assert json.loads(pushed.stdout)[0]["result"] == "committed", pushed.output
    finally:
        agent.kill()


def test_missing_operator_certificate_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgectl.app import app

    monkeypatch.setenv("EDGECTL_CERT_FILE", str(tmp_path / "nope.pem"))
    result = CliRunner().invoke(app, ["status", "--broker", "mqtts://127.0.0.1:1"])
    assert result.exit_code != 0 and "EDGECTL_CERT_FILE" in result.output and "nope.pem" in result.output
