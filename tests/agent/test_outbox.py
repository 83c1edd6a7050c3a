"""The outbox keeps every row until its PUBACK, across reconnects, restarts and a real broker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.reporting.outbox import Outbox
from fleet.mqtt import BrokerSettings, MqttClient
from tests.support.broker import Broker


def test_rows_survive_until_acked(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    for i in range(5):
        box.put("t", str(i).encode())
    sent: list[int] = []
    box.drain(lambda _t, _p, _q: (sent.append(1), len(sent))[1], window=3)
    assert box.inflight() == 3 and box.depth() == 5
    box.acked(1)
    box.reset_inflight()  # a disconnect: the other two go out again
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert again.depth() == 4
    assert [r.payload for r in again.pending(10)] == [b"1", b"2", b"3", b"4"]


def test_bounded_with_dropped_count(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_rows=3)
    for i in range(5):
        box.put("t", str(i).encode())
    assert box.depth() == 3 and box.dropped() == 2
    assert [r.payload for r in box.pending(10)] == [b"2", b"3", b"4"]


def test_sequence_survives_restart(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert [box.next_seq(), box.next_seq()] == [1, 2]
    box.close()
    assert Outbox(tmp_path / "o.db").next_seq() == 3


def test_nothing_lost_across_a_broker_restart(own_broker: Broker, tmp_path: Path) -> None:
    received: set[int] = set()
    done = threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener", clean_session=False)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.add(json.loads(msg.payload)["seq"])
        if len(received) == 200:
            done.set()

    subscribed = threading.Event()
    listener.on_connect = lambda c, *_: c.subscribe("edge/d1/telemetry", 1)
    listener.on_subscribe = lambda *_: subscribed.set()
    listener.on_message = on_message
    listener.connect("127.0.0.1", own_broker.port)
    listener.loop_start()
    assert subscribed.wait(10)  # otherwise the first messages race the subscription, not the outbox
    box = Outbox(tmp_path / "o.db")
    client = MqttClient("d1", BrokerSettings(port=own_broker.port))
    client.on_ack = box.acked
    client.on_disconnect_hook = box.reset_inflight
    assert client.start()
    for i in range(200):
        box.put("edge/d1/telemetry", json.dumps({"seq": box.next_seq()}).encode())
        if i == 100:
            own_broker.stop()
            own_broker.start()  # same port, same persistent data dir
        box.drain(lambda t, p, q: client.publish(t, p, q))
    deadline = time.monotonic() + 20
    while not done.wait(0.05) and time.monotonic() < deadline:
        box.drain(lambda t, p, q: client.publish(t, p, q))
    assert done.is_set(), f"missing {sorted(set(range(1, 201)) - received)[:10]}"
    client.stop()
    listener.loop_stop()


def test_full_disk_counts_rows_and_never_raises(tmp_path: Path) -> None:
    import contextlib

    from tests.support.tmpfs import tmpfs

    with tmpfs(tmp_path / "tiny", "1m") as mount:
        box = Outbox(mount / "o.db")
        seqs = [box.next_seq() for _ in range(3)]
        with contextlib.suppress(OSError):  # more than is left: the write stops at ENOSPC
            (mount / "filler").write_bytes(b"\0" * (1 << 20))
        for _ in range(200):
            box.put("edge/d/telemetry", b"x" * 4096)
        assert box.dropped() > 0
        more = [box.next_seq() for _ in range(3)]
        assert more == sorted(more) and more[0] > seqs[-1]
        (mount / "filler").unlink()
        box.put("edge/d/telemetry", b"after")  # room again: rows are written again
        assert box.depth() >= 1
        box.close()
