"""The agent as it runs for months: serve every model on its cameras, report over MQTT, stay healthy.
`wiring.build` composes its parts; this module only runs them."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from fleet.messages import ApiModelStats, BadPayload, Desired, Phase, parse
from fleet.mqtt import MqttClient
from fleet.topics import PING_JITTER_S, Topics
from runtimes.errors import RuntimesError
from runtimes.tasks import DetectAnswer
from runtimes.tasks.quality import signals

from . import __version__
from .api.run import ApiServers
from .commands import RESTART_EXIT, Commands
from .config import AgentConfig, CameraConfig
from .errors import AgentError
from .host import ModelHost
from .inference import drill
from .inference.engine import Engine
from .inference.probe import Probe
from .inference.serving import Serving
from .inference.shadow import Shadow
from .reporting import prometheus, sdnotify
from .reporting.board import StatusBoard
from .reporting.messaging import Messenger
from .reporting.outbox import Outbox
from .reporting.quality import QualityTracker, quality_summary
from .reporting.samples import Samples
from .reporting.telemetry import TelemetryBuilder, briefs, percentile
from .video.batching import BatchDecision, Batcher
from .video.camera import Camera, CameraEvent
from .video.capture import SourceOptions
from .video.pipeline import Answer, Pipeline
from .video.snapshot import Snapshots

log = logging.getLogger(__name__)


@dataclass
class Parts:
    """What every model shares: the hardware, the broker connection and the durable outbox."""

    hw: Probe
    topics: Topics
    outbox: Outbox
    client: MqttClient
    messenger: Messenger
    telemetry: TelemetryBuilder
    snapshots: Snapshots
    quality: QualityTracker
    samples: Samples


class Agent:
    def __init__(self, cfg: AgentConfig, parts: Parts, stop_signals: set[int] | None = None) -> None:
        self.cfg, self.parts = cfg, parts
        self.hw, self.topics, self.outbox = parts.hw, parts.topics, parts.outbox
        self.client, self.messenger = parts.client, parts.messenger
        self._stop_signals = stop_signals or set()
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.exit_code = 0
        self.hosts: dict[str, ModelHost] = {}  # by model name, the primary (default) model first
        self.board = StatusBoard(parts.messenger, lambda: list(self.hosts.values()))
        self.pipelines: list[Pipeline] = []
        self.batchers: list[Batcher] = []
        self.metrics_server: Any = None
        self.api: ApiServers | None = None  # the inference API, when [api] sets a listener
        self.commands = Commands(parts.client, parts.topics, cfg.device_id, parts.messenger, self)
        self._refused: set[tuple[str, str]] = set()
        self._pinged_at = 0.0

    def state_damaged(self, message: str, path: Path) -> None:
        """A state file was damaged and read as empty: an event that names it; status says so."""
        self.messenger.event("error", message, file=str(path), fault="damaged state file")
        self.messenger.set_status(reason=message)

    def primary(self) -> ModelHost | None:
        return next((h for h in self.hosts.values() if h.spec.primary), None)

    # -- what commands can do (commands.Controls) --------------------------------------------------------
    def restart(self) -> str:
        self.exit_code = RESTART_EXIT
        threading.Timer(0.5, self.stop_event.set).start()  # after the reply is out
        return "restarting"

    def reselect(self) -> str:
        host = self.primary()
        bundle = host.current() if host else None
        if host is None or bundle is None:
            raise AgentError("no model to reselect")
        if host.serving is not None and host.serving.selection.provisional:
            return "this device's selection is already running (fast start); its choice takes over when it ends"
        threading.Thread(target=self._reselect, args=(host, bundle), name="reselect", daemon=True).start()
        return "reselecting in the background; the current runtime serves until the new choice is ready"

    def _reselect(self, host: ModelHost, bundle: Any) -> None:
        try:
            host.swap(host.prepare(bundle, force_select=True))
        except (AgentError, RuntimesError) as exc:  # the old choice serves on
            self.messenger.event("error", f"reselect failed: {exc}")

    def config(self) -> dict[str, Any]:
        data: dict[str, Any] = self.cfg.model_dump(mode="json")
        if data.get("broker", {}).get("password"):
            data["broker"]["password"] = "***"
        return data

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.commands.start()
        self.client.start(wait_s=3.0)
        self.messenger.event("started", f"edge-agent {__version__} on {self.hw.cpu.model}")
        if self.outbox.problem:
            self.messenger.event("error", self.outbox.problem, file=str(self.outbox.path), fault="outbox")
        for host in self.hosts.values():
            self._load(host)
        for host in self.hosts.values():
            if host.updater is not None:
                host.updater.start()
        self.client.subscribe(self.topics.desired(self.cfg.device_id, "+"), self._on_other_desired)
        self.client.subscribe(self.topics.ping(), self._on_ping)
        self._start_cameras()
        self._start_api()
        if self.cfg.metrics_port:
            self.metrics_server = prometheus.serve(self, self.cfg.metrics_port)
        sdnotify.notify("READY=1\nSTATUS=" + self._status_text())

    def _start_api(self) -> None:
        if not self.cfg.api.enabled:
            return
        self.api = ApiServers(self.cfg.api, list(self.hosts.values()), lambda: prometheus.text(self))
        for problem in self.api.start():
            self.messenger.event("error", problem, fault="api")

    def api_stats(self) -> dict[str, ApiModelStats]:
        return self.api.api.stats() if self.api is not None else {}

    def _load(self, host: ModelHost) -> None:
        if host.spec.primary:  # the drill proves failover once, on the primary model's selected engine
            host.when_selected(self._arm_drill)
        host.load()
        self.board.loaded(host)

    def _arm_drill(self, served: Serving) -> None:
        armed = drill.arm(served.engine, self.cfg.drill)
        if armed:
            self.messenger.event("drill", armed)

    def _on_ping(self, _msg: mqtt.MQTTMessage) -> None:
        """Publish status now, after a random delay of up to PING_JITTER_S so ten thousand devices do not
        answer in the same millisecond; a flood of pings gets one answer a second."""
        now = time.monotonic()
        if now - self._pinged_at < 1.0:
            return
        self._pinged_at = now
        threading.Timer(random.uniform(0, PING_JITTER_S), self.messenger.publish_status).start()

    def _on_other_desired(self, msg: mqtt.MQTTMessage) -> None:
        """A push for a model this device does not have is refused at once, so `edgectl push --model` says
        why instead of waiting out its timeout. Once per digest: the retained message comes back on every
        reconnect."""
        name = str(msg.topic).rsplit("/", 1)[1]
        if name in self.hosts or not msg.payload:
            return
        try:
            desired = parse(Desired, msg.payload, msg.topic)
        except BadPayload as exc:
            self.messenger.event("rejected", f"rejected desired state: {exc}", phase=Phase.REFUSED, model=name)
            return
        if (name, desired.digest) in self._refused:
            return
        self._refused.add((name, desired.digest))
        self.messenger.event("rejected", f"model {name!r} is not configured on this device (it has: "
                             f"{', '.join(self.hosts)})", phase=Phase.REFUSED, digest=desired.digest, model=name)

    def _start_cameras(self) -> None:
        """One thread per camera, or one per group of cameras sharing a model (batched where it gains)."""
        groups: dict[str, list[Pipeline]] = {}
        for cam in self.cfg.cameras:
            camera = Camera(cam.id, cam.source, cam.loop, cam.realtime, self._source_options(cam),
                            self._on_camera).start()
            p = Pipeline(camera, self._engine_for(cam.model), self._on_answer, self._on_error, cam.model,
                         self._shadow_for(cam.model), cam.infer_fps)
            self.pipelines.append(p)
            if cam.model in self.hosts:
                self.hosts[cam.model].pipelines.append(p)
            groups.setdefault(cam.model, []).append(p)
        for name, group in groups.items():
            if len(group) > 1 and self.cfg.batching != "off":
                self.batchers.append(Batcher(group, self._engine_for(name), self._on_batching).start())
            else:
                for p in group:
                    p.start()

    def _source_options(self, cam: CameraConfig) -> SourceOptions:
        return SourceOptions(cam.decoder, cam.decode_threads, cam.stall_s, cam.jitter_ms,
                             tuple(self.parts.hw.decode.hardware))

    def _on_camera(self, e: CameraEvent) -> None:
        self.messenger.event("camera", e.message, cameras=[e.camera], down_s=e.down_s)

    def _engine_for(self, model: str) -> Callable[[], Engine | None]:
        host = self.hosts.get(model)
        return host.engine if host is not None else (lambda: None)  # its store failed: said at start

    def _shadow_for(self, model: str) -> Callable[[], Shadow | None]:
        host = self.hosts.get(model)
        return (lambda: host.shadow) if host is not None else (lambda: None)

    def _on_batching(self, d: BatchDecision) -> None:
        gain = f"{d.gain:.2f}x measured" if d.gain is not None else "the artifact takes one image per call"
        self.messenger.event("batching", f"{len(d.cameras)} cameras on {d.target}: "
                             f"{'one batched call' if d.batch else 'one call per frame'} ({gain})",
                             cameras=d.cameras, batch=d.batch, gain=d.gain, target=d.target)

    def _on_answer(self, answer: Answer) -> None:
        host = self.hosts.get(answer.model)
        serving = host.serving if host else None
        if serving is None:
            return
        manifest = serving.bundle.manifest
        self.messenger.result(answer.camera, manifest.name, manifest.task, answer.result, answer.latency_ms)
        if self.api is not None:
            self.api.answered(answer.camera, manifest.name, answer.result, answer.latency_ms, answer.frame)
        if isinstance(answer.result, DetectAnswer):
            self.parts.snapshots.offer(answer.camera, answer.result.detections, answer.frame)
        sig = signals(answer.result)
        self.parts.quality.observe(answer.camera, serving.bundle.digest, sig)
        if self.parts.samples.wanted(answer.camera, sig):
            self.parts.samples.offer(answer.camera, sig, answer.result, answer.frame, serving.refs()[0])

    def _on_error(self, message: str) -> None:
        self.messenger.event("error", message)
        self.messenger.set_status(state="degraded")

    def run(self) -> int:
        self._watch_signals()
        self.start()
        next_telemetry = time.monotonic()
        watchdog = sdnotify.watchdog_interval_s()
        next_watchdog = time.monotonic()
        next_check = time.monotonic()
        while not self.stop_event.wait(0.1):
            self.messenger.drain()
            now = time.monotonic()
            if now >= next_telemetry:
                self._send_telemetry()
                next_telemetry = now + self.cfg.telemetry_interval_s
            elif now >= next_check:  # a camera back (or gone) shows in status within a second
                self._check_frames()
                next_check = now + 1.0
            if watchdog and now >= next_watchdog and self._healthy(now):
                sdnotify.notify("WATCHDOG=1\nSTATUS=" + self._status_text())
                next_watchdog = now + watchdog
        self.shutdown()
        return self.exit_code

    def _watch_signals(self) -> None:
        """Take SIGTERM/SIGINT synchronously on a thread of their own. sigwait returns a signal number and
        never wakes for SIGSTOP/SIGCONT; sigtimedwait did, with a garbage siginfo that looked like a stop
        request (CPython fills it from uninitialised memory when the timeout ends during EINTR)."""
        if not self._stop_signals:
            return

        def wait() -> None:
            signo = signal.sigwait(self._stop_signals)
            log.info("stop signal %s received", signal.Signals(signo).name)
            self.stop_event.set()

        threading.Thread(target=wait, name="signals", daemon=True).start()

    def _healthy(self, now: float) -> bool:
        """Frames are being processed (or there is no camera to process)."""
        if not self.pipelines:
            return True
        limit = self.cfg.thresholds.no_frames_s
        return any(now - p.stats.last_processed_at < limit for p in self.pipelines)

    def _send_telemetry(self) -> None:
        host = self.primary()
        runtime = host.serving.runtime if host and host.serving else (lambda: (None, None))
        windows = {p.camera.id: p.stats.take_window() for p in self.pipelines}
        t = self.parts.telemetry.build(self.outbox.next_seq(), self.pipelines, windows, runtime,
                                       self.outbox.depth(), self.outbox.dropped())
        t.p95_baseline_ms = host.follower.baseline_ms if host is not None else None
        t.api = self.api_stats()
        self._follow(windows)
        self.messenger.telemetry(t.model_dump_json().encode())
        self.messenger.flush_rejections()
        capacity = t.capacity or self.messenger.status.capacity  # an interval without answers keeps the last
        self.messenger.set_status(metrics={"fps": t.fps, "p95_ms": t.p95_ms, "cpu_pct": t.cpu_pct,
                                           "temp_c": t.temp_c, "telemetry_seq": t.seq, **quality_summary(t)},
                                  cameras=briefs(t), capacity=capacity, api=t.api)
        self._check_frames()

    def _follow(self, windows: dict[str, list[float]]) -> None:
        """Each model's p95 over this interval, to the watch that keeps its selection right."""
        now = time.monotonic()
        for host in self.hosts.values():
            p95 = percentile([v for p in host.pipelines for v in windows.get(p.camera.id, [])], 0.95)
            host.watch(p95, now)

    def _check_frames(self) -> None:
        now = time.monotonic()
        stalled = [p.camera.id for p in self.pipelines
                   if now - max(p.stats.last_processed_at, self.started) > self.cfg.thresholds.no_frames_s]
        state = self.messenger.status.state
        host = self.primary()
        if stalled and state == "online":
            self.messenger.set_status(state="degraded")
            self.messenger.event("camera", f"no frames from {', '.join(stalled)}", cameras=stalled)
        elif not stalled and state == "degraded" and host is not None and self.board.settled(host) == "online":
            self.messenger.set_status(state="online")

    def _status_text(self) -> str:
        host = self.primary()
        s = host.serving if host else None
        if s is None:
            return "no model"
        return f"{s.bundle.manifest.name} v{s.bundle.manifest.version} on {s.engine.active.key}"

    def shutdown(self) -> None:
        for host in self.hosts.values():
            if host.updater is not None:
                host.updater.stop()
        for batcher in self.batchers:
            batcher.stop()
        for p in self.pipelines:
            p.stop()
            p.camera.stop()
        self.messenger.drain()
        self.client.publish(self.topics.status(self.cfg.device_id), self.messenger.offline_payload(), 1, True)
        self.client.stop()
        if self.api is not None:
            self.api.stop()
        for host in self.hosts.values():
            host.close()
        if self.metrics_server is not None:
            self.metrics_server[0].shutdown()
        self.outbox.close()
