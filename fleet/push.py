"""`edgectl push`: publish a bundle as retained chunks, set each device's retained desired state, and follow
the update events until every device commits, rolls back, refuses, or the wait runs out."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from runtimes.bundle import open_bundle

from .errors import FleetError
from .messages import TERMINAL, Desired
from .mqtt import BrokerSettings, MqttClient
from .topics import Topics
from .transfer import Packed, pack


@dataclass
class Progress:
    device: str
    phase: str = "pending"
    reason: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def result(self) -> dict[str, Any]:
        result = {"failed": "refused"}.get(self.phase, self.phase) if self.phase in TERMINAL else "timeout"
        end = self.finished or time.monotonic()
        return {"device": self.device, "result": result, "reason": self.reason, "seconds": round(end - self.started, 2)}


class Pusher:
    def __init__(self, broker: BrokerSettings, topics: Topics,
                 on_progress: Callable[[Progress], None] = lambda _p: None, model: str = "default") -> None:
        """`model`: which of each device's models this push updates (a name from its `[models]`)."""
        self.topics, self.on_progress, self.model = topics, on_progress, model
        self.client = MqttClient(f"edgectl-push-{uuid.uuid4().hex[:8]}", broker)
        self._acks: set[int] = set()
        self._ack_cond = threading.Condition()
        self.client.on_ack = self._acked
        self.progress: dict[str, Progress] = {}
        self.digest = ""

    def _acked(self, mid: int) -> None:
        with self._ack_cond:
            self._acks.add(mid)
            self._ack_cond.notify_all()

    def connect(self) -> None:
        if not self.client.start(wait_s=10):
            self.client.stop()
            raise FleetError(f"cannot reach the broker at {self.client.broker.host}:{self.client.broker.port}")

    def publish_bundle(self, root: Path) -> tuple[Packed, Desired]:
        bundle = open_bundle(root)  # refuse to ship something that does not even verify here
        packed = pack(root)
        self.digest = packed.digest
        mids = [self._publish(self.topics.bundle_manifest(packed.digest), packed.manifest.model_dump_json().encode())]
        for i in range(len(packed.manifest.chunk_sha256)):
            mids.append(self._publish(self.topics.bundle_chunk(packed.digest, i), packed.chunk(i)))
        self._wait_acks(mids, 120)
        desired = Desired(digest=packed.digest, name=bundle.manifest.name, version=bundle.manifest.version,
                          size=packed.manifest.size, chunks=len(packed.manifest.chunk_sha256))
        return packed, desired

    def _publish(self, topic: str, payload: bytes, retain: bool = True) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            mid = self.client.publish(topic, payload, qos=1, retain=retain)
            if mid is not None:
                return mid
            self.client.connected.wait(1)
        raise FleetError(f"could not publish {topic}: not connected")

    def _wait_acks(self, mids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._ack_cond:
            while not set(mids) <= self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise FleetError(f"broker acknowledged {len(set(mids) & self._acks)}/{len(mids)} messages")
                self._ack_cond.wait(left)

    def follow(self, devices: list[str]) -> None:
        for device in devices:
            self.progress[device] = Progress(device)
            self.client.subscribe(self.topics.events(device), self._on_event)

    def _on_event(self, msg: mqtt.MQTTMessage) -> None:
        parsed = self.topics.parse(msg.topic)
        try:
            doc = json.loads(msg.payload)
        except ValueError:
            return
        data = doc.get("data", {}) if isinstance(doc, dict) else {}
        prog = self.progress.get(parsed[0]) if parsed else None
        if prog is None or data.get("digest") != self.digest or not data.get("phase") \
                or data.get("model", "default") != self.model:
            return
        prog.phase, prog.reason = data["phase"], doc.get("message")
        if prog.phase in TERMINAL:
            prog.finished = time.monotonic()
            prog.done.set()
        self.on_progress(prog)

    def set_desired(self, devices: list[str], desired: Desired | None) -> None:
        payload = desired.model_dump_json().encode() if desired else b""
        self._wait_acks([self._publish(self.topics.desired(d, self.model), payload) for d in devices], 30)

    def wait(self, devices: list[str], timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        for device in devices:
            self.progress[device].done.wait(max(0.0, deadline - time.monotonic()))
        return [self.progress[d].result() for d in devices]

    def close(self) -> None:
        self.client.stop()


def rollout(pusher: Pusher, desired: Desired, devices: list[str], canary: int, abort_pct: float,
            timeout: float, wait: bool) -> list[dict[str, Any]]:
    """Canary first: when the failure share of the first wave passes abort_pct, the rest are not touched
    and the failed canaries' desired state is cleared so they stop retrying."""
    waves = [devices[:canary], devices[canary:]] if 0 < canary < len(devices) else [devices]
    results: list[dict[str, Any]] = []
    for index, wave in enumerate(waves):
        pusher.follow(wave)
        pusher.set_desired(wave, desired)
        if not wait:
            return [{"device": d, "result": "pending", "reason": None, "seconds": 0.0} for d in devices]
        outcome = pusher.wait(wave, timeout)
        results += outcome
        failed = [r["device"] for r in outcome if r["result"] != "committed"]
        if index == 0 and len(waves) > 1 and 100 * len(failed) / len(wave) > abort_pct:
            pusher.set_desired(failed, None)
            results += [{"device": d, "result": "skipped", "reason": f"canary failures {len(failed)}/{len(wave)} "
                         f"passed --abort-on {abort_pct:.0f}%", "seconds": 0.0} for d in waves[1]]
            break
    return results
