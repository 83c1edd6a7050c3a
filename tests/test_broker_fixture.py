"""The broker fixture is a real mosquitto on a free loopback port."""

import threading

import paho.mqtt.client as mqtt

from tests.support.broker import Broker


def test_publish_subscribe_round_trip(broker: Broker) -> None:
    got = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fixture-test")
    client.on_connect = lambda c, *_: c.subscribe("t/#", qos=1)
    client.on_subscribe = lambda c, *_: c.publish("t/x", b"hello", qos=1)
    client.on_message = lambda _c, _u, msg: got.set() if msg.payload == b"hello" else None
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert got.wait(5)
    finally:
        client.loop_stop()
        client.disconnect()
    assert broker.port != 1883
