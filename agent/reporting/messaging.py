"""What the agent says on MQTT: retained status (birth/LWT), events and telemetry through the disk outbox,
results at QoS 0 with a rate limit."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from fleet.messages import Event, ModelRef, Result, RuntimeRef, Status
from fleet.mqtt import MqttClient
from fleet.topics import Topics
from runtimes.manifest import Task
from runtimes.tasks import Answer as TaskAnswer

from ..inference.engine import Failover
from .outbox import Outbox

if TYPE_CHECKING:
    from ..inference.serving import Serving

log = logging.getLogger(__name__)


class Messenger:
    def __init__(self, device: str, topics: Topics, client: MqttClient, outbox: Outbox, results_per_s: float,
                 agent_version: str, groups: list[str], hardware: dict[str, Any]) -> None:
        self.device, self.topics, self.client, self.outbox = device, topics, client, outbox
        self._min_gap = 1.0 / results_per_s
        self._last_result: dict[str, float] = {}
        self._lock = threading.Lock()
        # "updating" until the first model serves: the agent is up, but nothing runs yet.
        self.status = Status(device=device, state="updating", agent_version=agent_version, groups=groups,
                             hardware=hardware)
        self._rejections = RateLimit(burst=10, per_s=0.2)
        client.on_ack = outbox.acked
        client.on_disconnect_hook = outbox.reset_inflight

    def offline_payload(self) -> bytes:
        return self.status.model_copy(update={"state": "offline", "ts": time.time()}).model_dump_json().encode()

    def set_status(self, **changes: Any) -> None:
        with self._lock:
            self.status = self.status.model_copy(update={**changes, "ts": time.time()})
        self.publish_status()

    def publish_status(self) -> None:
        with self._lock:
            payload = self.status.model_dump_json().encode()
        self.client.publish(self.topics.status(self.device), payload, qos=1, retain=True)

    def set_model(self, model: ModelRef, runtime: RuntimeRef | None) -> None:
        self.set_status(model=model, runtime=runtime,
                        last_change=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def failover(self, event: Failover, model: str | None = None) -> None:
        """A failover event; `model` names a named model (none: the default one)."""
        prefix = f"model {model}: " if model else ""
        extra = {"model": model} if model else {}
        loaded = f" (runner-up loaded in {event.load_s:.2f} s)" if event.load_s is not None else ""
        self.event("failover", f"{prefix}{event.from_key} → {event.to_key}: {event.reason}{loaded}",
                   from_key=event.from_key, to_key=event.to_key, reason=event.reason, load_s=event.load_s, **extra)

    def selection(self, s: Serving, model: str | None = None) -> None:
        """What a model now serves, and its runner-up; `model` names a named model (none: the default one)."""
        m, sel, runner_up = s.bundle.manifest, s.selection.selected, s.selection.runner_up
        prefix = f"model {model}: " if model else ""
        extra = {"model": model} if model else {}
        how = " (a safe start while this device's selection runs)" if s.selection.provisional else ""
        self.event("selection", f"{prefix}serving {m.name} v{m.version} on {sel.key}{how}", selected=sel.as_dict(),
                   runner_up=runner_up.as_dict() if runner_up else None, cached=s.selection.cached,
                   provisional=s.selection.provisional, **extra)

    def event(self, kind: str, message: str, **data: Any) -> None:
        """Durable: written to the outbox before this returns. Rejections are rate-limited: a flood of
        hostile messages must not become a flood of durable events that holds telemetry back."""
        if kind == "rejected":
            allowed, suppressed = self._rejections.take()
            if not allowed:
                return
            if suppressed:
                message += f" ({suppressed} more rejected message(s) not reported one by one)"
                data["suppressed"] = suppressed
        self._write_event(kind, message, data)

    def flush_rejections(self) -> None:
        """Report what the rate limit held back, once the flood is over."""
        suppressed = self._rejections.flush()
        if suppressed:
            self._write_event("rejected", f"{suppressed} rejected message(s) not reported one by one",
                              {"suppressed": suppressed})

    def _write_event(self, kind: str, message: str, data: dict[str, Any]) -> None:
        ev = Event(device=self.device, seq=self.outbox.next_seq("event"), ts=time.time(), kind=kind,
                   message=message, data=data)
        self.outbox.put(self.topics.events(self.device), ev.model_dump_json().encode(), created=ev.ts)
        log.info("event %s: %s", kind, message)

    def sample(self, camera: str, payload: bytes) -> None:
        self.outbox.put(self.topics.sample(self.device, camera), payload, created=time.time())

    def telemetry(self, payload: bytes) -> None:
        self.outbox.put(self.topics.telemetry(self.device), payload, created=time.time())

    def result(self, camera: str, model: str, task: Task, answer: TaskAnswer, latency_ms: float) -> bool:
        now = time.monotonic()
        if now - self._last_result.get(camera, 0.0) < self._min_gap:
            return False
        self._last_result[camera] = now
        res = Result(device=self.device, ts=time.time(), camera=camera, model=model, task=task,
                     latency_ms=round(latency_ms, 3), **dict(answer))
        self.client.publish(self.topics.results(self.device), res.model_dump_json().encode(), qos=0)
        return True

    def drain(self) -> None:
        self.outbox.drain(lambda t, p, q: self.client.publish(t, p, q))


class RateLimit:
    """A token bucket that counts what it refuses."""

    def __init__(self, burst: int, per_s: float) -> None:
        self.burst, self.per_s = burst, per_s
        self._tokens, self._at = float(burst), time.monotonic()
        self._suppressed = 0
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, int]:
        """(allowed, how many were refused since the last allowed one)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
            self._at = now
            if self._tokens < 1:
                self._suppressed += 1
                return False, 0
            self._tokens -= 1
            suppressed, self._suppressed = self._suppressed, 0
            return True, suppressed

    def flush(self) -> int:
        with self._lock:
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed
