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

from . import remote, web
from .errors import FleetError
from .messages import TERMINAL, Desired
from .mqtt import Brokers, MqttClient
from .topics import DEFAULT_MODEL, Topics
from .transfer import Packed, pack

FIGURES = ("p95_ms", "previous_p95_ms", "fps", "previous_fps")  # what a soak measured, in push results


@dataclass
class Progress:
    device: str
    phase: str = "pending"
    reason: str | None = None
    agreement: float | None = None  # the new model against the previous one on live frames (the soak's shadow)
    figures: dict[str, float] = field(default_factory=dict)  # p95_ms, fps and the previous model's, from the soak
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def result(self) -> dict[str, Any]:
        result = {"failed": "refused"}.get(self.phase, self.phase) if self.phase in TERMINAL else "timeout"
        end = self.finished or time.monotonic()
        return {"device": self.device, "result": result, "reason": self.reason, "seconds": round(end - self.started, 2),
                "agreement": self.agreement, **{k: self.figures.get(k) for k in FIGURES}}


class Pusher:
    def __init__(self, broker: Brokers, topics: Topics,
                 on_progress: Callable[[Progress], None] = lambda _p: None, model: str = DEFAULT_MODEL) -> None:
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
            raise FleetError(f"cannot reach the broker at {', '.join(b.address for b in self.client.brokers)}")

    def publish_bundle(self, root: Path, http: web.HttpSource | None = None,
                       http_dir: Path | None = None) -> tuple[Packed, Desired]:
        """Retained chunks on the broker, or (with `http`) the bytes on a web server: laid out in `http_dir`
        when given, and checked reachable at the URL before any device is told about them."""
        bundle = open_bundle(root)  # refuse to ship something that does not even verify here
        packed = pack(root)
        self.digest = packed.digest
        if http is not None:
            if http_dir is not None:
                web.layout(packed, http_dir)
            http.manifest(packed.digest)
        else:
            self._publish_chunks(packed)
        desired = Desired(digest=packed.digest, name=bundle.manifest.name, version=bundle.manifest.version,
                          size=packed.manifest.size, chunks=len(packed.manifest.chunk_sha256),
                          url=http.base if http else None)
        return packed, desired

    def _publish_chunks(self, packed: Packed) -> None:
        mids = [self._publish(self.topics.bundle_manifest(packed.digest), packed.manifest.model_dump_json().encode())]
        for i in range(len(packed.manifest.chunk_sha256)):
            mids.append(self._publish(self.topics.bundle_chunk(packed.digest, i), packed.chunk(i)))
        self._wait_acks(mids, 120)
        remote.add_to_index(self.client, self.topics, packed.digest, len(packed.manifest.chunk_sha256))

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
                or data.get("model", DEFAULT_MODEL) != self.model:
            return
        prog.phase, prog.reason = data["phase"], doc.get("message")
        if isinstance(data.get("agreement"), int | float):
            prog.agreement = float(data["agreement"])
        prog.figures |= {k: float(data[k]) for k in FIGURES if isinstance(data.get(k), int | float)}
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
            return [_result(d, "pending") for d in devices]
        outcome = pusher.wait(wave, timeout)
        results += outcome
        failed = [r["device"] for r in outcome if r["result"] != "committed"]
        if index == 0 and len(waves) > 1 and 100 * len(failed) / len(wave) > abort_pct:
            pusher.set_desired(failed, None)
            why = "; ".join(f"{r['device']}: {r['result']} ({r['reason']})" for r in outcome if r["device"] in failed)
            results += [_result(d, "skipped", f"halted: canary failures {len(failed)}/{len(wave)} passed "
                                              f"--abort-on {abort_pct:.0f}% — {why}") for d in waves[1]]
            break
    return results


def _result(device: str, result: str, reason: str | None = None) -> dict[str, Any]:
    return {"device": device, "result": result, "reason": reason, "seconds": 0.0, "agreement": None,
            **dict.fromkeys(FIGURES)}
