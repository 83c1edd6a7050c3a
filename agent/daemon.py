"""The agent as it runs for months: serve the model on the cameras, report over MQTT, stay healthy."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.messages import TERMINAL, Status
from fleet.mqtt import BrokerSettings, MqttClient, Will
from fleet.topics import Topics
from runtimes.bundle import Bundle, open_bundle
from runtimes.tasks import DetectAnswer

from . import __version__, drill, prometheus, sdnotify, serving
from .batching import BatchDecision, Batcher
from .camera import Camera
from .commands import Commands
from .config import AgentConfig
from .engine import Engine, Failover
from .errors import AgentError
from .messaging import Messenger
from .models import NamedModels
from .outbox import Outbox
from .pipeline import Answer, Pipeline
from .probe import Probe, probe_isolated
from .snapshot import Snapshots
from .store import Store
from .telemetry import TelemetryBuilder
from .updater import Updater

log = logging.getLogger(__name__)


def broker_settings(cfg: AgentConfig) -> BrokerSettings:
    b = cfg.broker
    password = b.password_file.read_text().strip() if b.password_file else b.password
    return BrokerSettings.from_url(b.url, protocol=b.protocol, keepalive=b.keepalive, username=b.username,
                                   password=password, ca_file=str(b.ca_file) if b.ca_file else None,
                                   cert_file=str(b.cert_file) if b.cert_file else None,
                                   key_file=str(b.key_file) if b.key_file else None)


class Agent:
    def __init__(self, cfg: AgentConfig, stop_signals: set[int] | None = None) -> None:
        self.cfg = cfg
        self._stop_signals = stop_signals or set()
        self.topics = Topics(cfg.broker.prefix)
        self.started = time.monotonic()
        self.stop_event = threading.Event()
        self.serving: serving.Serving | None = None
        self.pipelines: list[Pipeline] = []
        self.batchers: list[Batcher] = []
        self.named = NamedModels(self)
        self.metrics_server: Any = None
        self.hw: Probe = probe_isolated()
        try:
            cfg.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AgentError(f"state_dir {cfg.state_dir}: cannot create ({exc.strerror})") from exc
        self.outbox = Outbox(cfg.state_dir / "outbox.db", cfg.outbox_max_rows)
        hardware = {"arch": self.hw.arch, "cpu": self.hw.cpu["model"], "cores": self.hw.cpu["cores"],
                    "memory_mb": self.hw.memory_mb, "accelerators": self.hw.accelerators}
        offline = Status(device=cfg.device_id, state="offline", agent_version=__version__, groups=cfg.groups,
                         hardware=hardware).model_dump_json().encode()
        self.client = MqttClient(cfg.device_id, broker_settings(cfg), Will(self.topics.status(cfg.device_id), offline),
                                 on_connect=lambda _c: self.messenger.publish_status())
        self.messenger = Messenger(cfg.device_id, self.topics, self.client, self.outbox, cfg.results_per_s,
                                   __version__, cfg.groups, hardware)
        self.telemetry = TelemetryBuilder(cfg.device_id, cfg.state_dir, self.started)
        self.messenger.set_status(telemetry_interval_s=cfg.telemetry_interval_s)
        self._swap_lock = threading.Lock()
        self.store = Store(cfg.state_dir / "store", on_damage=self.state_damaged)
        self.fallback: str | None = None  # why the model serving is not the committed one
        self.updater = Updater(self, self.store, self.client, self.topics, cfg.device_id, cfg.thresholds.soak_s,
                               cfg.thresholds.fetch_stall_s)
        self.commands = Commands(self)
        self.snapshots = Snapshots(cfg.snapshot, lambda cam, jpeg: self.client.publish(
            self.topics.snapshot(cfg.device_id, cam), jpeg, 0))

    def state_damaged(self, message: str, path: Path) -> None:
        """A state file was damaged and read as empty: an event that names it; status says so."""
        self.messenger.event("error", message, file=str(path), fault="damaged state file")
        self.messenger.set_status(reason=message)

    # -- model ------------------------------------------------------------------------------------------
    def trusted_keys(self) -> list[bytes]:
        keys = []
        for path in self.cfg.trusted_keys:
            try:
                keys.append(path.read_bytes())
            except OSError as exc:
                raise AgentError(f"trusted key {path}: cannot read ({exc.strerror})") from exc
        return keys

    def open(self, root: Path) -> Bundle:
        return open_bundle(root, trusted_keys=self.trusted_keys(), allow_unsigned=self.cfg.allow_unsigned)

    def prepare(self, bundle: Bundle, force_select: bool = False) -> serving.Serving:
        """Golden-check, select and load a bundle's best candidate; whatever serves now keeps serving."""
        return serving.start(bundle, self.hw, self.cfg.state_dir, self.cfg.selection_budget_s,
                             self.cfg.thresholds.stuck_timeout_s, self._on_failover, self.cfg.file_source("default"),
                             force_select, self.cfg.runner_up)

    def swap(self, new: serving.Serving) -> None:
        """Pipelines pick up the new engine on their next frame; the old one is closed after its last."""
        with self._swap_lock:
            old, self.serving = self.serving, new
        if old is not None:
            old.engine.close()
        self._announce(new)

    def serve(self, bundle: Bundle, force_select: bool = False) -> serving.Serving:
        new = self.prepare(bundle, force_select)
        self.swap(new)
        return new

    def current(self) -> Bundle | None:
        return self.serving.bundle if self.serving else None

    def health(self, model: str = "default") -> tuple[int, int, int]:
        """A model's frames processed (-1 without cameras), inference errors, failovers of its engine."""
        mine = [p for p in self.pipelines if p.model == model]
        frames = sum(p.stats.processed for p in mine) if mine else -1
        s = self.serving if model == "default" else self.named.servings.get(model)
        failovers = len(s.engine.failovers) if s else 0
        return frames, sum(p.stats.errors for p in mine), failovers

    def report(self, phase: str, digest: str, message: str, kind: str = "update", **data: Any) -> None:
        self.messenger.event(kind, message, phase=phase, digest=digest, **data)
        if phase == "committed":
            self.fallback = None
        if phase in TERMINAL:
            state = "online" if self.serving is not None and self.fallback is None else "degraded"
            self.messenger.set_status(state=state, update_phase=phase, reason=self.fallback)
        else:
            self.messenger.set_status(state="updating", update_phase=phase)

    def _announce(self, s: serving.Serving) -> None:
        self.messenger.set_model(*s.refs())
        self.messenger.selection(s)

    def _on_failover(self, event: Failover) -> None:
        self.messenger.failover(event)
        if self.serving is not None:
            self.messenger.set_model(*self.serving.refs())

    def engine(self) -> Engine | None:
        return self.serving.engine if self.serving else None

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.commands.start()
        self.client.start(wait_s=3.0)
        self.messenger.event("started", f"edge-agent {__version__} on {self.hw.cpu['model']}")
        if self.outbox.problem:
            self.messenger.event("error", self.outbox.problem, file=str(self.outbox.path), fault="outbox")
        self._load_initial()
        self.named.load()
        self.updater.start()
        self.named.start()
        self._start_cameras()
        if self.cfg.metrics_port:
            self.metrics_server = prometheus.serve(self, self.cfg.metrics_port)
        sdnotify.notify("READY=1\nSTATUS=" + self._status_text())

    def _start_cameras(self) -> None:
        """One thread per camera, or one per group of cameras sharing a model (batched where it gains)."""
        groups: dict[str, list[Pipeline]] = {}
        for cam in self.cfg.cameras:
            camera = Camera(cam.id, cam.source, cam.loop, cam.realtime).start()
            p = Pipeline(camera, self._engine_for(cam.model), self._on_answer, self._on_error, cam.model)
            self.pipelines.append(p)
            groups.setdefault(cam.model, []).append(p)
        for name, group in groups.items():
            if len(group) > 1 and self.cfg.batching != "off":
                self.batchers.append(Batcher(group, self._engine_for(name), self._on_batching).start())
            else:
                for p in group:
                    p.start()

    def _engine_for(self, model: str) -> Callable[[], Engine | None]:
        return self.engine if model == "default" else self.named.engine(model)

    def _on_batching(self, d: BatchDecision) -> None:
        gain = f"{d.gain:.2f}x measured" if d.gain is not None else "the artifact takes one image per call"
        self.messenger.event("batching", f"{len(d.cameras)} cameras on {d.target}: "
                             f"{'one batched call' if d.batch else 'one call per frame'} ({gain})",
                             cameras=d.cameras, batch=d.batch, gain=d.gain, target=d.target)

    def _load_initial(self) -> None:
        """The store's committed model, else its previous one, else --bundle (the seed model). Serving
        anything but the committed model is `degraded`, with the reason, until an update commits."""
        roots = self.store.start_roots(self.cfg.bundle)
        committed = self.store.current()
        failures: list[str] = []

        def failed(message: str) -> None:
            failures.append(message)
            self.messenger.event("error", message)

        served = serving.first_that_serves(roots, lambda root: self.serve(self.open(root)), failed)
        if served is None:
            self.messenger.set_status(state="degraded", reason="; ".join(failures) or "no model")
            if not roots:
                self.messenger.event("error", "no model: give --bundle or push one with `edgectl push`")
            return
        armed = drill.arm(served.engine, self.cfg.drill)
        if armed:
            self.messenger.event("drill", armed)
        if committed is not None and served.bundle.root != committed:
            self.fallback = f"the committed model does not serve ({failures[0] if failures else 'unknown'}); " \
                            f"serving {served.bundle.manifest.name} v{served.bundle.manifest.version} instead"
            self.messenger.set_status(state="degraded", reason=self.fallback)
            return
        self.messenger.set_status(state="online")

    def _on_answer(self, answer: Answer) -> None:
        if answer.model == "default":
            manifest = self.serving.bundle.manifest if self.serving else None
        else:
            manifest = self.named.manifest(answer.model)
        if manifest is not None:
            self.messenger.result(answer.camera, manifest.name, manifest.task, answer.result, answer.latency_ms)
            if isinstance(answer.result, DetectAnswer):
                self.snapshots.offer(answer.camera, answer.result.detections, answer.frame)

    def _on_error(self, message: str) -> None:
        self.messenger.event("error", message)
        self.messenger.set_status(state="degraded")

    def run(self) -> int:
        self._watch_signals()
        self.start()
        next_telemetry = time.monotonic()
        watchdog = sdnotify.watchdog_interval_s()
        next_watchdog = time.monotonic()
        while not self._wait_stop(0.1):
            self.messenger.drain()
            now = time.monotonic()
            if now >= next_telemetry:
                self._send_telemetry()
                next_telemetry = now + self.cfg.telemetry_interval_s
            if watchdog and now >= next_watchdog and self._healthy(now):
                sdnotify.notify("WATCHDOG=1\nSTATUS=" + self._status_text())
                next_watchdog = now + watchdog
        self.shutdown()
        return self.commands.exit_code

    def _wait_stop(self, timeout: float) -> bool:
        return self.stop_event.wait(timeout)

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
        runtime = self.serving.runtime if self.serving else (lambda: (None, None))
        t = self.telemetry.build(self.outbox.next_seq(), self.pipelines, runtime, self.outbox.depth(),
                                 self.outbox.dropped())
        self.messenger.telemetry(t.model_dump_json().encode())
        self.messenger.flush_rejections()
        self.messenger.set_status(metrics={"fps": t.fps, "p95_ms": t.p95_ms, "cpu_pct": t.cpu_pct,
                                           "temp_c": t.temp_c, "telemetry_seq": t.seq})
        self._check_frames()

    def _check_frames(self) -> None:
        now = time.monotonic()
        stalled = [p.camera.id for p in self.pipelines
                   if now - max(p.stats.last_processed_at, self.started) > self.cfg.thresholds.no_frames_s]
        state = self.messenger.status.state
        if stalled and state == "online":
            self.messenger.set_status(state="degraded")
            self.messenger.event("camera", f"no frames from {', '.join(stalled)}", cameras=stalled)
        elif not stalled and state == "degraded" and self.serving is not None and self.fallback is None:
            self.messenger.set_status(state="online")

    def _status_text(self) -> str:
        s = self.serving
        if s is None:
            return "no model"
        return f"{s.bundle.manifest.name} v{s.bundle.manifest.version} on {s.engine.active.key}"

    def shutdown(self) -> None:
        self.updater.stop()
        for batcher in self.batchers:
            batcher.stop()
        for p in self.pipelines:
            p.stop()
            p.camera.stop()
        self.messenger.drain()
        self.client.publish(self.topics.status(self.cfg.device_id), self.messenger.offline_payload(), 1, True)
        self.client.stop()
        if self.serving:
            self.serving.engine.close()
        self.named.close()
        if self.metrics_server is not None:
            self.metrics_server[0].shutdown()
        self.outbox.close()
