"""`edgectl metrics`: every device's MQTT telemetry and status as Prometheus metrics, labelled
`device="<id>"` (docs/fleet.md, `metrics`), for devices a Prometheus server cannot scrape (behind NAT, on cellular).

The text exposition format (0.0.4) is written here, so the laptop needs no prometheus-client. State is
judged as `edgectl status` judges it (a silent device turns stale, then offline, with no will needed)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt

from .messages import BadPayload, CameraStats, Status, Telemetry, parse
from .mqtt import Brokers, MqttClient
from .status import row
from .topics import Topics

log = logging.getLogger(__name__)
STATES = ("online", "updating", "degraded", "stale", "offline")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[dict[str, str], float | None]
# name, type, help, and how to read it from a device's telemetry
DEVICE_GAUGES: tuple[tuple[str, str, str, Callable[[Telemetry], float | None]], ...] = (
    ("edge_device_uptime_seconds", "gauge", "Agent uptime", lambda t: t.uptime_s),
    ("edge_device_fps", "gauge", "Results per second over every camera", lambda t: t.fps),
    ("edge_device_cpu_percent", "gauge", "Host CPU use", lambda t: t.cpu_pct),
    ("edge_device_memory_bytes", "gauge", "Agent resident memory", lambda t: _scaled(t.mem_mb, 1e6)),
    ("edge_device_temperature_celsius", "gauge", "Hottest temperature sensor", lambda t: t.temp_c),
    ("edge_device_disk_free_bytes", "gauge", "Free space where the agent keeps its state",
     lambda t: _scaled(t.disk_free_mb, 1e6)),
    ("edge_device_outbox_depth", "gauge", "Messages waiting for the broker's ack", lambda t: t.outbox_depth),
    ("edge_device_outbox_dropped_total", "counter", "Outbox rows dropped at its bound", lambda t: t.outbox_dropped),
)


class FleetView:
    """The latest telemetry and status of every device, fed from the broker's threads."""

    def __init__(self, topics: Topics) -> None:
        self.topics = topics
        self._lock = threading.Lock()
        self.telemetry: dict[str, Telemetry] = {}
        self.status: dict[str, Status] = {}

    def on_telemetry(self, msg: mqtt.MQTTMessage) -> None:
        self._keep(msg, Telemetry, self.telemetry)

    def on_status(self, msg: mqtt.MQTTMessage) -> None:
        self._keep(msg, Status, self.status)

    def _keep(self, msg: mqtt.MQTTMessage, model: type[Telemetry] | type[Status], into: dict[str, Telemetry] |
              dict[str, Status]) -> None:
        parsed = self.topics.parse(msg.topic)
        if parsed is None or not msg.payload:
            return
        try:
            doc = parse(model, msg.payload, msg.topic)
        except BadPayload as exc:
            log.warning("%s", exc)  # one device's bad payload never stops the others' metrics
            return
        with self._lock:
            into[parsed[0]] = doc  # type: ignore[assignment]

    def render(self, now: float | None = None) -> str:
        with self._lock:
            telemetry, status = dict(self.telemetry), dict(self.status)
        lines: list[str] = []
        for name, kind, text, read in DEVICE_GAUGES:
            lines += family(name, kind, text, [({"device": d}, read(t)) for d, t in sorted(telemetry.items())])
        lines += _latency(telemetry) + _cameras(telemetry) + _states(status, now or time.time())
        return "\n".join(lines) + "\n"


def _scaled(value: float | None, factor: float) -> float | None:
    """Prometheus' base units (seconds, bytes) from the telemetry's ms and MB: promtool's lint asks for them."""
    return None if value is None else value * factor


def _latency(telemetry: dict[str, Telemetry]) -> list[str]:
    # `percentile`, not `quantile`: promtool reserves `quantile` for summaries.
    samples: list[Sample] = [({"device": d, "percentile": q}, _scaled(v, 1e-3)) for d, t in sorted(telemetry.items())
                             for q, v in (("50", t.p50_ms), ("95", t.p95_ms))]
    return family("edge_device_latency_seconds", "gauge", "Per-frame latency percentile", samples)


def _cameras(telemetry: dict[str, Telemetry]) -> list[str]:
    cams = [({"device": d, "camera": c, "model": s.model}, s) for d, t in sorted(telemetry.items())
            for c, s in sorted(t.cameras.items())]
    return (family("edge_camera_fps", "gauge", "Results per second", [(k, s.fps) for k, s in cams])
            + family("edge_camera_frames_total", "counter", "Frames inferred", [(k, s.frames) for k, s in cams])
            + family("edge_camera_skipped_total", "counter", "Frames dropped for newer ones",
                     [(k, s.skipped) for k, s in cams])
            + family("edge_camera_connected", "gauge", "1 while the camera delivers",
                     [(k, float(s.connected)) for k, s in cams])
            + _quality(cams))


def _quality(cams: list[tuple[dict[str, str], CameraStats]]) -> list[str]:
    """Each camera's quality over the last telemetry interval (telemetry `quality`, docs/agent.md)."""
    qs = [(k, s.quality) for k, s in cams if s.quality is not None]
    bins = [({**k, "bin": f"{i / len(q.confidence_hist):.1f}"}, float(n)) for k, q in qs
            for i, n in enumerate(q.confidence_hist)]
    classes = [({**k, "label": label}, share) for k, q in qs for label, share in q.classes.items()]
    return (family("edge_camera_low_confidence_share", "gauge", "Share of frames below the confidence threshold",
                   [(k, q.low_confidence_share) for k, q in qs])
            + family("edge_camera_confidence_drift", "gauge", "Jensen-Shannon distance of the confidence "
                     "histogram from the model's first hours", [(k, q.drift) for k, q in qs])
            + family("edge_camera_class_drift", "gauge", "Jensen-Shannon distance of the class mix from the "
                     "model's first hours", [(k, q.class_drift) for k, q in qs])
            + family("edge_camera_confidence_scores", "gauge", "Scores per confidence bin (lower edge) over "
                     "the last interval", bins)
            + family("edge_camera_class_share", "gauge", "Share of each label answered over the last interval",
                     classes))


def _states(status: dict[str, Status], now: float) -> list[str]:
    rows = {d: row(d, s, now) for d, s in sorted(status.items())}
    states = [({"device": d, "state": st}, float(r["state"] == st)) for d, r in rows.items() for st in STATES]
    seen = [({"device": d}, r["last_seen_s"]) for d, r in rows.items()]
    info = [({"device": d, "model": r["model"] or "", "version": str(r["version"] or ""),
              "runtime": r["runtime"] or "", "executes_on": r["device_kind"] or "",
              "agent_version": r["agent_version"] or ""}, 1.0) for d, r in rows.items()]
    progress = [({"device": d}, s.update_progress) for d, s in sorted(status.items())]
    return (family("edge_device_state", "gauge", "1 for the state `edgectl status` shows", states)
            + family("edge_device_last_seen_seconds", "gauge", "Seconds since the device's last status", seen)
            + family("edge_device_info", "gauge", "The model and runtime the device serves", info)
            + family("edge_device_update_progress_percent", "gauge", "Share of an update's transfer received",
                     progress))


def family(name: str, kind: str, text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family in the text format; samples without a value are left out."""
    body = [f"{name}{_labels(labels)} {value:g}" for labels, value in samples if value is not None]
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *body] if body else []


def _labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}" if inner else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Exporter:
    """Subscribes to every device's telemetry and status and serves them at http://HOST:PORT/metrics."""

    def __init__(self, broker: Brokers, topics: Topics) -> None:
        self.view = FleetView(topics)
        # A ping on every connect: devices answer with a live status, whatever the broker retains.
        self.topics = topics
        self.client = MqttClient(f"edgectl-metrics-{uuid.uuid4().hex[:8]}", broker, on_connect=self._ping)
        self.client.subscribe(topics.every("telemetry"), self.view.on_telemetry)
        self.client.subscribe(topics.every("status"), self.view.on_status)
        self._server: ThreadingHTTPServer | None = None

    def _ping(self, client: MqttClient) -> None:
        client.publish(self.topics.ping(), b"", qos=0)

    def start(self, host: str, port: int, connect_s: float = 10.0) -> tuple[str, int]:
        """Listen (OSError when it cannot), then connect; the bound address (port 0 picks a free one)."""
        self._server = ThreadingHTTPServer((host, port), _handler(self.view))
        threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True).start()
        if not self.client.start(wait_s=connect_s):
            self.stop()
            raise ConnectionError(f"cannot reach the broker at {', '.join(b.address for b in self.client.brokers)}")
        bound = self._server.server_address
        return str(bound[0]), int(bound[1])

    def stop(self) -> None:
        self.client.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler(view: FleetView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served")
                return
            body = view.render().encode()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics: " + format, *args)

    return Handler
