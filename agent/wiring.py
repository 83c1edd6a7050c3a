"""The agent's parts, composed in one place: from a config to an `Agent` ready to start."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fleet.messages import Status
from fleet.mqtt import BrokerSettings, MqttClient, Will
from fleet.topics import Topics
from runtimes.bundle import Bundle, open_bundle

from . import __version__
from .config import AgentConfig, ModelSpec
from .daemon import Agent, Parts
from .errors import AgentError
from .host import ModelHost, ShadowSettings, Starter
from .inference.probe import Probe, probe_isolated
from .inference.serving import ServingSettings
from .reporting.board import StatusBoard
from .reporting.homeassistant import Discovery
from .reporting.messaging import Messenger
from .reporting.outbox import Outbox
from .reporting.quality import QualityTracker
from .reporting.samples import Samples
from .reporting.telemetry import TelemetryBuilder
from .update.store import Store, StoreError
from .update.updater import Updater
from .video.snapshot import Snapshots


def broker_settings(cfg: AgentConfig) -> list[BrokerSettings]:
    """Every broker node, in failover order, with the same credentials."""
    b = cfg.broker
    password = b.password_file.read_text().strip() if b.password_file else b.password
    return BrokerSettings.from_urls(b.all_urls(), protocol=b.protocol, keepalive=b.keepalive, username=b.username,
                                    password=password, ca_file=str(b.ca_file) if b.ca_file else None,
                                    cert_file=str(b.cert_file) if b.cert_file else None,
                                    key_file=str(b.key_file) if b.key_file else None)


def build(cfg: AgentConfig, stop_signals: set[int] | None = None, *, probe: Probe | None = None,
          client: MqttClient | None = None, starter: Starter | None = None) -> Agent:
    """Every part of a running agent; the only place that knows how they connect. A test passes its own
    probe, broker client or starter (how a bundle becomes a warm engine) and gets the rest real."""
    hw = probe or probe_isolated()
    _state_dir(cfg.state_dir)
    topics = Topics(cfg.broker.prefix)
    outbox = Outbox(cfg.state_dir / "outbox.db", cfg.outbox_max_rows)
    hardware = hw.hardware()
    offline = Status(device=cfg.device_id, state="offline", agent_version=__version__, groups=cfg.groups,
                     hardware=hardware).model_dump_json().encode()
    announce: list[Callable[[], None]] = []  # on_connect needs the parts built after the client
    client = client or MqttClient(cfg.device_id, broker_settings(cfg), Will(topics.status(cfg.device_id), offline),
                                  on_connect=lambda _c: _say(announce))
    messenger = Messenger(cfg.device_id, topics, client, outbox, cfg.results_per_s, __version__, cfg.groups,
                          hardware)
    announce.append(messenger.publish_status)
    if cfg.homeassistant.enabled:
        discovery = Discovery(client, topics, cfg.device_id, __version__, cfg.homeassistant.prefix)
        discovery.start()
        announce.append(discovery.publish)
    messenger.set_status(telemetry_interval_s=cfg.telemetry_interval_s)
    snapshots = Snapshots(cfg.snapshot, lambda cam, jpeg: client.publish(topics.snapshot(cfg.device_id, cam),
                                                                         jpeg, 0))
    quality = QualityTracker(cfg.quality)
    samples = Samples(cfg.device_id, cfg.quality, messenger.sample)
    parts = Parts(hw=hw, topics=topics, outbox=outbox, client=client, messenger=messenger,
                  telemetry=TelemetryBuilder(cfg.device_id, cfg.state_dir, time.monotonic(), quality),
                  snapshots=snapshots, quality=quality, samples=samples)
    agent = Agent(cfg, parts, stop_signals)
    settings = starter or ServingSettings(hw, cfg.state_dir, cfg.selection_budget_s,
                                          cfg.thresholds.stuck_timeout_s, cfg.runner_up)
    for spec in cfg.model_specs():
        host = _host(cfg, spec, parts, settings, agent.board, agent)
        if host is not None:
            agent.hosts[spec.name] = host
    return agent


def _say(announce: list[Callable[[], None]]) -> None:
    for say in announce:
        say()


def _host(cfg: AgentConfig, spec: ModelSpec, parts: Parts, settings: Starter, board: StatusBoard,
          agent: Agent) -> ModelHost | None:
    try:
        store = Store(cfg.state_dir / "store", spec.pointers, on_damage=agent.state_damaged)
    except StoreError as exc:
        if spec.primary:
            raise
        parts.messenger.event("error", f"model {spec.name}: {exc}", model=spec.name)
        return None
    shadow = ShadowSettings(cfg.thresholds.shadow_budget, cfg.state_dir / "shadow" / spec.name)
    host = ModelHost(spec, store, settings, OpenBundle(cfg.trusted_keys, cfg.allow_unsigned), parts.messenger, board,
                     shadow, cfg.follow, cfg.fast_start)
    host.updater = Updater(host, store, parts.client, parts.topics, cfg.device_id, cfg.thresholds.soak_s,
                           cfg.thresholds.fetch_stall_s, model=spec.name,
                           http_ca_file=str(cfg.http_ca_file) if cfg.http_ca_file else None)
    return host


class OpenBundle:
    """Opens and verifies a bundle against the trusted keys, read at each open so a rotated key counts."""

    def __init__(self, keys: list[Path], allow_unsigned: bool) -> None:
        self.keys, self.allow_unsigned = keys, allow_unsigned

    def __call__(self, root: Path) -> Bundle:
        return open_bundle(root, trusted_keys=self._read(), allow_unsigned=self.allow_unsigned)

    def _read(self) -> list[bytes]:
        keys = []
        for path in self.keys:
            try:
                keys.append(path.read_bytes())
            except OSError as exc:
                raise AgentError(f"trusted key {path}: cannot read ({exc.strerror})") from exc
        return keys


def _state_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise AgentError(f"state_dir {path}: cannot create ({exc.strerror})") from exc


