"""Optional Prometheus endpoint on localhost (metrics_port): read at scrape time from the agent's own
counters, so it costs nothing between scrapes. Telemetry over MQTT stays the fleet's source of truth."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from fleet.messages import ApiModelStats

from ..host import ModelHost
from ..video.pipeline import Pipeline
from .messaging import Messenger
from .outbox import Outbox

log = logging.getLogger(__name__)


class Observed(Protocol):
    """What the metrics read: the agent's own counters, at scrape time."""

    @property
    def pipelines(self) -> list[Pipeline]: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def messenger(self) -> Messenger: ...
    def primary(self) -> ModelHost | None: ...
    def api_stats(self) -> dict[str, ApiModelStats]: ...


class AgentCollector:
    def __init__(self, agent: Observed) -> None:
        self.agent = agent

    def describe(self) -> list[Any]:
        return []  # collected on demand: nothing to describe up front

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        frames = CounterMetricFamily("edge_agent_frames", "Frames inferred", labels=["camera"])
        skipped = CounterMetricFamily("edge_agent_skipped_frames", "Frames dropped for newer ones", labels=["camera"])
        errors = CounterMetricFamily("edge_agent_inference_errors", "Failed inferences", labels=["camera"])
        # Base units and a `percentile` label: promtool's lint rejects _ms and a `quantile` outside a summary.
        latency = GaugeMetricFamily("edge_agent_latency_seconds", "Per-frame latency percentile",
                                    labels=["camera", "percentile"])
        for p in self.agent.pipelines:
            cam = p.camera.id
            frames.add_metric([cam], p.stats.processed)
            skipped.add_metric([cam], p.camera.stats.skipped)
            errors.add_metric([cam], p.stats.errors)
            for q in (0.5, 0.95):
                value = p.stats.percentile(q)
                if value is not None:
                    latency.add_metric([cam, str(int(q * 100))], value / 1000)
        yield from (frames, skipped, errors, latency)
        yield from _api_metrics(self.agent.api_stats(), GaugeMetricFamily, CounterMetricFamily)
        yield from self._agent_metrics(GaugeMetricFamily, CounterMetricFamily, InfoMetricFamily)

    def _agent_metrics(self, gauge: Any, counter: Any, info: Any) -> Iterator[Any]:
        a = self.agent
        depth = gauge("edge_agent_outbox_depth", "Messages waiting for a PUBACK")
        depth.add_metric([], a.outbox.depth())
        dropped = counter("edge_agent_outbox_dropped", "Outbox rows dropped at the bound")
        dropped.add_metric([], a.outbox.dropped())
        failovers = counter("edge_agent_failovers", "Runtime failovers of the serving model")
        host = a.primary()
        failovers.add_metric([], host.health()[2] if host else 0)
        serving = info("edge_agent_serving", "The model and runtime in use")
        s = host.serving if host else None
        if s is not None:
            runtime, executes_on = s.runtime()
            serving.add_metric([], {"model": s.bundle.manifest.name, "version": str(s.bundle.manifest.version),
                                    "runtime": runtime or "", "executes_on": executes_on or "",
                                    "state": a.messenger.status.state})
        yield from (depth, dropped, failovers, serving)


def _api_metrics(stats: dict[str, ApiModelStats], gauge: Any, counter: Any) -> Iterator[Any]:
    if not stats:
        return
    requests = counter("edge_agent_api_requests", "Requests the inference API answered", labels=["model"])
    rejected = counter("edge_agent_api_rejected", "Requests refused for a full queue or a missed deadline",
                       labels=["model"])
    latency = gauge("edge_agent_api_latency_seconds", "Request latency percentile over the last requests",
                    labels=["model", "percentile"])
    for model, s in stats.items():
        requests.add_metric([model], s.requests)
        rejected.add_metric([model], s.rejected)
        for pct, value in ((50, s.p50_ms), (95, s.p95_ms)):
            if value is not None:
                latency.add_metric([model, str(pct)], value / 1000)
    yield from (requests, rejected, latency)


def text(agent: Observed) -> bytes:
    """The exposition the API's /metrics serves (the same collector as metrics_port)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    return bytes(generate_latest(registry))


def serve(agent: Observed, port: int) -> Any:
    """Start the endpoint on 127.0.0.1:port; None (and an event) when it cannot start."""
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        agent.messenger.event("error", "metrics_port is set but prometheus-client is not installed")
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(agent))
    try:
        return start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        agent.messenger.event("error", f"metrics_port {port}: cannot listen ({exc.strerror})")
        return None
