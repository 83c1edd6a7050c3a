"""fleet/mqtt.py: the one broker-URL check, and a real round trip through a real broker."""

from __future__ import annotations

import threading

import pytest

from fleet.errors import FleetError
from fleet.mqtt import BrokerSettings, MqttClient, parse_broker_url
from tests.support.broker import Broker


@pytest.mark.parametrize(("url", "host", "port", "tls"), [
    ("mqtt://h:1884", "h", 1884, False), ("mqtts://h", "h", 8883, True), ("h", "h", 1883, False),
    ("tcp://10.0.0.1:1", "10.0.0.1", 1, False), ("ssl://h:8884", "h", 8884, True)])
def test_good_urls(url: str, host: str, port: int, tls: bool) -> None:
    u = parse_broker_url(url)
    assert (u.host, u.port, u.tls) == (host, port, tls)


@pytest.mark.parametrize(("url", "why"), [("http://h", "scheme"), ("mqtt://h:0", "port 0"),
                                          ("mqtt://h:70000", "1-65535"), ("mqtt://h/x", "no path"),
                                          ("mqtt://:1883", "no host")])
def test_bad_urls_say_why(url: str, why: str) -> None:
    with pytest.raises(FleetError, match=why):
        parse_broker_url(url)


def test_credentials_in_the_url_win_over_extra() -> None:
    s = BrokerSettings.from_url("mqtt://u:p@h:1", username="other", password="other")
    assert (s.username, s.password) == ("u", "p")
    assert BrokerSettings.from_url("mqtt://h:1", username="x").username == "x"


def test_publish_and_subscribe_through_a_real_broker(broker: Broker) -> None:
    got: list[bytes] = []
    done = threading.Event()
    client = MqttClient("unit-mqtt", BrokerSettings.from_url(broker.url))

    def on_message(msg: object) -> None:
        got.append(msg.payload)  # type: ignore[attr-defined]
        done.set()

    client.subscribe("unit/+/x", on_message)
    assert client.start(wait_s=5.0)
    client.publish("unit/a/x", b"hello", qos=1)
    assert done.wait(10.0)
    client.stop()
    assert got == [b"hello"]


def test_an_unreachable_broker_is_false_not_a_hang() -> None:
    from tests.support.broker import free_port

    assert MqttClient("unit-none", BrokerSettings(port=free_port())).start(wait_s=1.0) is False
