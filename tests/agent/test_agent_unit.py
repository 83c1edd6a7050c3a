"""An Agent built in-process from its real parts, with a recording broker client and the fake runtime: no
broker, no child process. What the daemon tests prove end to end, this proves in a second."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent import wiring
from agent.config import AgentConfig
from agent.daemon import Agent
from agent.inference import selection
from agent.inference.engine import Engine, Failover, Slot
from agent.inference.follow import Drift
from agent.inference.serving import Serving
from agent.update.soak import Perf
from fleet.messages import Phase
from runtimes.bundle import Bundle
from tests.support import fakebundle
from tests.support.fakebundle import FAKE_PROBE


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool = False
    properties: Any = None


@dataclass
class RecordingClient:
    """Stands in for fleet.mqtt.MqttClient: records publishes, hands subscriptions to the test."""

    published: list[tuple[str, bytes, bool]] = field(default_factory=list)
    handlers: dict[str, Callable[[Any], None]] = field(default_factory=dict)
    on_ack: Any = None
    on_disconnect_hook: Any = None

    def subscribe(self, topic: str, handler: Callable[[Any], None], qos: int = 1) -> None:
        self.handlers[topic] = handler

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                properties: Any = None) -> int:
        self.published.append((topic, payload if isinstance(payload, bytes) else payload.encode(), retain))
        return len(self.published)

    def start(self, wait_s: float = 10.0) -> bool:
        return True

    def stop(self, clean: bool = True) -> None:
        pass

    def response_properties(self, response_topic: str, correlation: bytes) -> None:
        return None

    def docs(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p, _ in self.published if t.endswith(suffix) and p]


class InProcess:
    """Selection on the fake runtime in this process (the device does it in a child process)."""

    def start(self, bundle: Bundle, on_failover: Callable[[Failover], None], source: Path | None = None,
              force: bool = False, under_load: bool = False, quick: bool = False) -> Serving:
        sel = selection.select(bundle, FAKE_PROBE, budget_s=0.3)
        slot = Slot(sel.selected.key, selection.load_candidate(bundle, sel.selected))
        return Serving(bundle, sel, Engine(slot, None, 5.0, on_failover, labels=bundle.manifest.labels))


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    return fakebundle.make(tmp_path / "seed", {"onnx-fp32": {}})


@contextlib.contextmanager
def _agent(tmp_path: Path, client: RecordingClient, **cfg: Any) -> Iterator[Agent]:
    config = AgentConfig(device_id="unit", state_dir=tmp_path / "state", allow_unsigned=True, **cfg)
    agent = wiring.build(config, probe=FAKE_PROBE, client=client, starter=InProcess())  # type: ignore[arg-type]
    agent.start()
    agent.messenger.drain()
    yield agent
    agent.shutdown()


def test_an_agent_builds_and_serves_in_process(tmp_path: Path, seed: Path) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client, bundle=seed) as agent:
        assert list(agent.hosts) == ["default"] and agent.hosts["default"].serving is not None
        assert client.docs("/status")[-1]["state"] == "online"
        assert {e["kind"] for e in client.docs("/events")} >= {"started", "selection"}


def test_every_model_is_a_host_and_the_default_is_just_the_first(tmp_path: Path, seed: Path) -> None:
    client = RecordingClient()
    faces = fakebundle.make(tmp_path / "faces", {"onnx-fp32": {}})
    with _agent(tmp_path, client, bundle=seed, models={"faces": faces}) as agent:
        assert list(agent.hosts) == ["default", "faces"]
        status = client.docs("/status")[-1]
        assert status["state"] == "online" and [m["name"] for m in status["other_models"]] == ["faces"]
        agent.hosts["faces"].report(Phase.FETCHING, "d" * 64, "fetching 3 chunks")
        assert client.docs("/status")[-1]["other_models"][0]["update_phase"] == "fetching"
        assert client.docs("/status")[-1]["state"] == "online"  # a named model's update leaves the state alone


def test_no_model_is_degraded_with_the_reason(tmp_path: Path) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client):
        status = client.docs("/status")[-1]
        assert status["state"] == "degraded" and "no model" in status["reason"]


def test_a_push_for_an_unknown_model_is_refused_once(tmp_path: Path, seed: Path) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client, bundle=seed) as agent:
        desired = json.dumps({"digest": "e" * 64, "name": "x", "version": 2, "size": 10, "chunks": 1}).encode()
        for _ in range(2):
            client.handlers["edge/unit/desired/+"](Message("edge/unit/desired/cars", desired))
        agent.messenger.drain()
        refused = [e for e in client.docs("/events") if e["kind"] == "rejected"]
        assert len(refused) == 1 and "'cars' is not configured" in refused[0]["message"]


def test_commands_reach_the_agent_through_its_controls(tmp_path: Path, seed: Path) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client, bundle=seed):
        client.handlers["edge/unit/cmd/+"](Message("edge/unit/cmd/config", b'{"request_id": "r1"}'))
        reply = client.docs("/reply/r1")[-1]
        assert reply["ok"] and reply["result"]["device_id"] == "unit"


def test_a_ping_is_answered_with_status_once_a_second(tmp_path: Path, seed: Path) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client, bundle=seed):
        before = len(client.docs("/status"))
        for _ in range(50):  # a flood of pings: one answer
            client.handlers["edge/_fleet/ping"](Message("edge/_fleet/ping", b""))
        wait = threading.Event()
        for _ in range(40):
            if len(client.docs("/status")) > before:
                break
            wait.wait(0.05)
        wait.wait(0.5)
        assert len(client.docs("/status")) == before + 1


def _nominee(serving: Serving) -> Serving:
    """The same artifact with other settings, as a re-measure under load nominates it."""
    mine = serving.selection.selected
    other = dataclasses.replace(mine, settings={**mine.settings, "latency_ms": 1.0})
    slot = Slot(other.key, selection.load_candidate(serving.bundle, other))
    sel = selection.Selection(1.0, [mine, other], other, None)
    return Serving(serving.bundle, sel, Engine(slot, None, 5.0, labels=serving.bundle.manifest.labels))


@pytest.mark.parametrize(("live_ms", "stays"), [((20.0, 15.0), True), ((20.0, 19.0), False), ((20.0, None), False)])
def test_a_reselection_nominee_is_judged_on_live_frames(tmp_path: Path, seed: Path, live_ms: tuple[float, float | None],
                                                         stays: bool) -> None:
    client = RecordingClient()
    with _agent(tmp_path, client, bundle=seed) as agent:
        host = agent.hosts["default"]
        current = host.serving
        assert current is not None
        fresh = _nominee(current)
        figures = iter(Perf(ms, 10.0, 100) if ms is not None else None for ms in live_ms)
        host._live = lambda: next(figures)  # type: ignore[method-assign]
        host._settle(current, fresh, Drift(30.0, 10.0, 60.0))
        agent.messenger.drain()
        kept, dropped = (fresh, current) if stays else (current, fresh)
        assert host.serving is kept and dropped.engine.closed and not kept.engine.closed
        stages = [e["data"]["stage"] for e in client.docs("/events") if e["kind"] == "reselect"]
        done = [e for e in client.docs("/events") if e["kind"] == "reselect"][-1]["data"]
        assert stages == ["trying", "switched" if stays else "kept"] and done["fastest"] == fresh.selection.selected.key
        assert done["previous_ms"] == 20.0 and done["fastest_ms"] == live_ms[1]
