"""Hostile payloads sent to a running agent: each one refused with an event, and the model keeps serving."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.messages import BadPayload, Command, Desired, parse
from tests.fleet.test_hostile import FIELDS, JSONISH
from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent

DEVICE = "fz1"
TOPICS = [f"edge/{DEVICE}/desired", *(f"edge/{DEVICE}/cmd/{n}" for n in ("restart", "reselect", "logs", "config"))]
PAYLOADS = st.one_of(st.binary(min_size=1, max_size=300), FIELDS.map(lambda d: json.dumps(d).encode()),
                     JSONISH.map(lambda d: json.dumps(d).encode()))


class Target:
    def __init__(self, broker: Broker, recorder: Recorder) -> None:
        self.broker, self.recorder = broker, recorder
        self.sent = 0
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fuzzer")
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def rejected(self) -> int:
        """Refusals the agent accounted for: one per event, plus those its rate limit reported as a count."""
        return sum(_refusals(d) for d in self.recorder.of(f"{DEVICE}/events") if d["kind"] == "rejected")

    def send(self, topic: str, payload: bytes) -> None:
        """Publish without waiting for its refusal: every refusal is counted once all are sent (a round trip
        per payload made this module take four minutes)."""
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)
        self.sent += 1


def _refusals(event: dict[str, object]) -> int:
    data = event.get("data") or {}
    suppressed = int(data.get("suppressed", 0)) if isinstance(data, dict) else 0
    summary_only = str(event.get("message", "")).endswith("not reported one by one")  # the flush after a flood
    return suppressed + (0 if summary_only else 1)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, bundle: Path, media: Path) -> Iterator[Target]:
    work = tmp_path_factory.mktemp("fuzz-agent")
    broker = Broker(free_port(), work / "mosquitto").start()
    recorder = Recorder(broker.port, ["edge/#"], client_id="fuzz-recorder")
    agent = start_agent(broker, bundle, media, work / "state", DEVICE, env=FAST)
    recorder.wait_for(lambda t, d: t == f"edge/{DEVICE}/status" and d["state"] == "online", 60)
    t = Target(broker, recorder)
    yield t
    assert agent.poll() is None, "the agent died under fuzzing"
    recorder.wait_for(lambda tp, d: tp == f"edge/{DEVICE}/status" and d["state"] == "online", 10)
    agent.kill()
    t.client.loop_stop()
    recorder.close()
    broker.kill()


def _refusable(topic: str, payload: bytes) -> bool:
    model = Desired if topic.endswith("/desired") else Command
    try:
        parse(model, payload, topic)
    except BadPayload:
        return True
    return False  # a well-formed request is not hostile input (and `restart` would restart)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from(TOPICS), payload=PAYLOADS)
def test_each_hostile_payload_is_sent(target: Target, topic: str, payload: bytes) -> None:
    if not _refusable(topic, payload):
        return
    target.send(topic, payload)


def test_every_hostile_payload_was_refused_with_an_event(target: Target) -> None:
    target.recorder.wait_for(lambda t, _d: t == f"edge/{DEVICE}/events" and target.rejected() >= target.sent, 60)
    assert target.rejected() == target.sent


def test_agent_still_serves_after_the_fuzzing(target: Target) -> None:
    seen = len(target.recorder.of(f"{DEVICE}/results"))
    target.recorder.wait_for(lambda t, _d: t == f"edge/{DEVICE}/results"
                             and len(target.recorder.of(f"{DEVICE}/results")) > seen, 10)
    assert target.sent > 100
