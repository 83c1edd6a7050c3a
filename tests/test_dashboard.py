"""The Grafana dashboard in docs/grafana reads only metrics that exist: every `edge_…` name in its queries is
one the fleet exporter (`edgectl metrics`) or the agent's own endpoint (`metrics_port`) serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.reporting.prometheus import AgentCollector
from fleet.exporter import FleetView
from fleet.messages import CameraQuality, CameraStats, ModelRef, Status, Telemetry
from fleet.topics import Topics

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "edgectl-fleet.json"


def _names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


QUALITY = CameraQuality(frames=2, confidence_hist=[0] * 9 + [2], classes={"cat": 1.0}, low_confidence_share=0.0,
                        drift=0.1, class_drift=0.0)


def _fleet_names() -> set[str]:
    view = FleetView(Topics())
    view.telemetry["d"] = Telemetry(device="d", seq=1, ts=0, uptime_s=1, fps=2, p50_ms=3, p95_ms=4, cpu_pct=5,
                                    mem_mb=6, temp_c=7, disk_free_mb=8,
                                    cameras={"c": CameraStats(fps=1, frames=2, skipped=0, connected=True,
                                                              quality=QUALITY)})
    view.status["d"] = Status(device="d", state="online", model=ModelRef(name="m", version=1, digest="0" * 64),
                              update_progress=50.0)
    return _names(view.render())


def _agent_names() -> set[str]:
    observed = SimpleNamespace(pipelines=[], outbox=SimpleNamespace(depth=lambda: 0, dropped=lambda: 0),
                               messenger=None, primary=lambda: None, api_stats=lambda: {})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(observed))  # type: ignore[arg-type]
    return _names(generate_latest(registry).decode())


def test_every_dashboard_query_names_a_served_metric() -> None:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    used = {name for e in exprs for name in re.findall(r"\bedge_[a-z_]+", e)}
    served = _fleet_names() | _agent_names() | {"edge_agent_frames_total", "edge_agent_latency_seconds",
                                                "edge_agent_inference_errors_total"}  # per camera: none here
    assert used and used <= served, used - served
