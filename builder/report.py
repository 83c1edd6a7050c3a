"""report.json and report.html (a table and a latency-vs-agreement chart, inline SVG, no plotting library)."""

from __future__ import annotations

import html
import json
import os
import platform
from pathlib import Path
from typing import Any

from runtimes.tasks import Measure

COLOURS = {"ok": "#2a7", "rejected": "#d80", "failed": "#c33"}


def write(root: Path, report: dict[str, Any], measures: tuple[Measure, ...]) -> list[str]:
    """`measures`: the task's, the first one charted."""
    (root / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (root / "report.html").write_text(_html(report, measures[0], measures[1 if len(measures) > 1 else 0]))
    return ["report.json", "report.html"]


def _html(report: dict[str, Any], strict: Measure, loose: Measure) -> str:
    rows = "".join(_row(t, strict, loose) for t in report["targets"])
    title = html.escape(f"{report['model']['name']} v{report['model']['version']}")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>edgectl report: {title}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head><body>
<h1>{title}</h1><p>Built {html.escape(report['created'])} on {html.escape(report['host']['cpu'])}
({report['host']['cores']} cores) in {report['seconds']:.1f} s; {report['validation_images']} validation images.</p>
<table><tr><th>target</th><th>status</th><th>{strict.name}</th><th>{loose.name}</th><th>latency ms</th>
<th>MB</th><th>build s</th><th>checked on</th><th>reason</th></tr>{rows}</table>
<h2>Latency on the build host vs {strict.name} with FP32</h2>{_chart(report['targets'], strict)}</body></html>
"""


def _row(t: dict[str, Any], strict: Measure, loose: Measure) -> str:
    agr = t.get("agreement") or {}
    cells = [t["target"], t["status"], _fmt(agr.get(strict.key)), _fmt(agr.get(loose.key)), _fmt(t.get("latency_ms")),
             _fmt((t.get("bytes") or 0) / 1e6), _fmt(t.get("seconds")), t.get("checked_on") or "",
             t.get("reason") or ""]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _chart(targets: list[dict[str, Any]], strict: Measure, w: int = 560, h: int = 320, pad: int = 50) -> str:
    points = [t for t in targets if t.get("latency_ms") and t.get("agreement")]
    if not points:
        return "<p>No artifact could be measured on this host.</p>"
    xmax = float(max(t["latency_ms"] for t in points)) * 1.15
    ymin = min(0.8, float(min(t["agreement"][strict.key] for t in points)) - 0.02)

    def x(v: float) -> float:
        return pad + (w - 2 * pad) * v / xmax

    def y(v: float) -> float:
        return h - pad - (h - 2 * pad) * (v - ymin) / (1.0 - ymin)

    marks = "".join(
        f'<circle cx="{x(t["latency_ms"]):.1f}" cy="{y(t["agreement"][strict.key]):.1f}" r="6" '
        f'fill="{COLOURS.get(t["status"], "#888")}"/><text x="{x(t["latency_ms"]) + 9:.1f}" '
        f'y="{y(t["agreement"][strict.key]) + 4:.1f}" font-size="12">{html.escape(t["target"])}</text>'
        for t in points)
    axes = (f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#000"/>'
            f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#000"/>'
            f'<text x="{w / 2}" y="{h - 12}" font-size="12" text-anchor="middle">'
            f'median latency, ms (0–{xmax:.1f})</text>'
            f'<text x="14" y="{h / 2}" font-size="12" transform="rotate(-90 14 {h / 2})" text-anchor="middle">'
            f'{html.escape(strict.name)} ({ymin:.2f}–1.00)</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">{axes}{marks}</svg>'


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 1, "arch": platform.machine()}
