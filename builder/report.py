"""report.json and report.html (a table and a latency-vs-agreement chart, inline SVG, no plotting library)."""

from __future__ import annotations

import html
import json
import math
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
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left;white-space:nowrap}}</style></head><body>
<h1>{title}</h1><p>Built {html.escape(report['created'])} on {html.escape(report['host']['cpu'])}
({report['host']['cores']} cores) in {report['seconds']:.1f} s; {report['validation_images']} validation images.</p>
<table><tr><th>target</th><th>status</th><th>{strict.name}</th><th>{loose.name}</th><th>latency ms</th>
<th>MB</th><th>build s</th><th>checked on</th><th>reason</th></tr>{rows}</table>
<h2>Latency against agreement with FP32</h2>{_chart(report['targets'], strict)}</body></html>
"""


def _row(t: dict[str, Any], strict: Measure, loose: Measure) -> str:
    agr = t.get("agreement") or {}
    cells = [t["target"], t["status"], _fmt(agr.get(strict.key)), _fmt(agr.get(loose.key)), _fmt(t.get("latency_ms")),
             _fmt((t.get("bytes") or 0) / 1e6), _fmt(t.get("seconds")), t.get("checked_on") or "",
             t.get("reason") or ""]
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}" if value < 10 else f"{value:.1f}"


CHAR_W, LINE_H = 7.2, 15.0  # a generous box for 12 px sans-serif, so labels never touch in a real browser


def _chart(targets: list[dict[str, Any]], strict: Measure, w: int = 640, h: int = 380) -> str:
    points = [t for t in targets if t.get("latency_ms") and t.get("agreement")]
    if not points:
        return "<p>No artifact could be measured on this host.</p>"
    xs = _ticks(0.0, float(max(t["latency_ms"] for t in points)) * 1.1)
    low = float(min(t["agreement"][strict.key] for t in points))
    ys = _ticks(min(0.9, low - 0.01), 1.0)
    frame = _Frame(60, 34, w - 24, h - 50, xs[0], xs[-1], ys[0], ys[-1])
    marks = [(frame.x(t["latency_ms"]), frame.y(t["agreement"][strict.key]), t) for t in points]
    body = _axes(frame, xs, ys, strict) + "".join(
        f'<circle cx="{px:.1f}" cy="{py:.1f}" r="6" fill="{COLOURS.get(t["status"], "#888")}"/>'
        for px, py, t in marks) + _labels(frame, marks)
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif">{body}</svg>'


class _Frame:
    """The plot area in pixels and the data range it shows."""

    def __init__(self, left: float, top: float, right: float, bottom: float, x0: float, x1: float, y0: float,
                 y1: float) -> None:
        self.left, self.top, self.right, self.bottom = left, top, right, bottom
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def x(self, v: float) -> float:
        return self.left + (self.right - self.left) * (v - self.x0) / (self.x1 - self.x0)

    def y(self, v: float) -> float:
        return self.bottom - (self.bottom - self.top) * (v - self.y0) / (self.y1 - self.y0)


def _ticks(lo: float, hi: float, want: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × 10^k apart) from at or below `lo` to at or above `hi`."""
    raw = max(hi - lo, 1e-9) / want
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step + 1e-9) * step
    count = math.ceil((hi - first) / step - 1e-9)
    return [round(first + i * step, 10) for i in range(count + 1)]


def _tick_text(v: float, values: list[float]) -> str:
    step = values[1] - values[0] if len(values) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) + (1 if round(step / 10 ** math.floor(
        math.log10(step)), 6) == 2.5 else 0)
    return f"{v:.{decimals}f}"


def _axes(f: _Frame, xs: list[float], ys: list[float], strict: Measure) -> str:
    grid = "".join(
        f'<line x1="{f.x(v):.1f}" y1="{f.top}" x2="{f.x(v):.1f}" y2="{f.bottom + 5}" stroke="#ddd"/>'
        f'<text x="{f.x(v):.1f}" y="{f.bottom + 19}" font-size="11" text-anchor="middle">{_tick_text(v, xs)}</text>'
        for v in xs) + "".join(
        f'<line x1="{f.left - 5}" y1="{f.y(v):.1f}" x2="{f.right}" y2="{f.y(v):.1f}" stroke="#ddd"/>'
        f'<text x="{f.left - 8}" y="{f.y(v) + 4:.1f}" font-size="11" text-anchor="end">{_tick_text(v, ys)}</text>'
        for v in ys)
    frame = (f'<line x1="{f.left}" y1="{f.bottom}" x2="{f.right}" y2="{f.bottom}" stroke="#000"/>'
             f'<line x1="{f.left}" y1="{f.top}" x2="{f.left}" y2="{f.bottom}" stroke="#000"/>')
    mid_x = (f.left + f.right) / 2
    # The y title sits above its axis, unrotated: measure names are long and would not fit along it.
    titles = (f'<text x="{mid_x:.1f}" y="{f.bottom + 40}" font-size="12" text-anchor="middle">'
              f'median latency on the build host, ms</text>'
              f'<text x="{f.left - 40}" y="{f.top - 16}" font-size="12">{html.escape(strict.name)}, against FP32'
              f'</text>')
    return grid + frame + titles


Box = tuple[float, float, float, float]  # left, top, right, bottom


def _labels(f: _Frame, marks: list[tuple[float, float, dict[str, Any]]]) -> str:
    """Each target's name beside its point, moved (with a leader line) where it would touch another."""
    taken: list[Box] = [(px - 7, py - 7, px + 7, py + 7) for px, py, _ in marks]
    out = []
    for px, py, t in sorted(marks, key=lambda m: (m[1], m[0])):
        name = str(t["target"])
        width = CHAR_W * len(name)
        box = _place(f, px, py, width, taken)
        taken.append(box)
        tx, ty = box[0], box[3] - 4
        if abs((box[1] + box[3]) / 2 - py) > LINE_H or box[0] > px + 12 or box[2] < px:
            out.append(f'<line x1="{px:.1f}" y1="{py:.1f}" x2="{box[0] if box[0] > px else box[2]:.1f}" '
                       f'y2="{(box[1] + box[3]) / 2:.1f}" stroke="#999"/>')
        out.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="12">{html.escape(name)}</text>')
    return "".join(out)


def _place(f: _Frame, px: float, py: float, width: float, taken: list[Box]) -> Box:
    for dy in [0.0] + [s * k * LINE_H for k in range(1, 12) for s in (1, -1)]:
        for left in (px + 9, px - 9 - width):
            box = (left, py + dy - LINE_H / 2 - 1, left + width, py + dy + LINE_H / 2 + 1)
            inside = box[0] >= f.left + 2 and box[2] <= f.right + 18 and box[1] >= 0 and box[3] <= f.bottom
            if inside and not any(_overlap(box, other) for other in taken):
                return box
    return (px + 9, py - LINE_H / 2, px + 9 + width, py + LINE_H / 2)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


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
