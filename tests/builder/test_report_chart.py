"""The build report's chart in a real browser (Debian's headless Chromium): axes with ticks and units, and no
label touching another label or another target's point, measured with the browser's own text metrics; a
screenshot is taken and must show the points."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from builder import report
from runtimes.tasks.classify import ClassifySpec

BROWSER = next((b for b in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no headless Chromium (scripts/setup.sh installs "
                                                        "chromium-headless-shell)")
# Read back by the page itself: every text's and circle's box as the browser laid them out.
PROBE = """<script>
const svg = document.querySelector('svg');
const boxes = [...svg.querySelectorAll('text, circle')].map(e => {
  const b = e.getBoundingClientRect();
  return {tag: e.tagName, text: e.textContent, l: b.left, t: b.top, r: b.right, b: b.bottom};
});
const frame = svg.getBoundingClientRect();
document.getElementById('probe').textContent = JSON.stringify({boxes, frame: {l: frame.left, t: frame.top,
  r: frame.right, b: frame.bottom}});
</script>"""
# Crowded on purpose: INT8 artifacts close in latency and agreement, as on a real x86 build host.
TARGETS = [("onnx-fp32", 11.8, 1.0), ("onnx-int8", 6.1, 0.962), ("openvino-fp16", 4.3, 1.0),
           ("openvino-int8", 2.4, 0.968), ("tflite-int8", 6.3, 0.958), ("tensorrt", None, None)]


def _report() -> dict[str, Any]:
    rows = [{"target": n, "status": "ok" if lat else "skipped", "latency_ms": lat, "seconds": 3.0, "bytes": 4e6,
             "agreement": {"top1_confident": a, "top5": a} if a else None, "checked_on": "onnxruntime",
             "reason": None} for n, lat, a in TARGETS]
    return {"model": {"name": "efficientnet-lite0", "version": 1}, "created": "2026-12-01T00:00:00+00:00",
            "host": {"cpu": "test CPU", "cores": 2}, "seconds": 60.0, "validation_images": 200, "targets": rows}


def _render(page: Path, shot: Path) -> dict[str, Any]:
    args = [BROWSER or "", "--headless", "--no-sandbox", "--disable-gpu", "--window-size=900,900"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    subprocess.run([*args, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120, check=True)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stderr[-1000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def test_the_chart_has_ticks_units_and_no_overlapping_labels(tmp_path: Path) -> None:
    report.write(tmp_path, _report(), ClassifySpec.measures)
    page = tmp_path / "probe.html"
    page.write_text((tmp_path / "report.html").read_text().replace("</body>", f'<pre id="probe"></pre>{PROBE}'
                                                                               "</body>"))
    laid = _render(page, tmp_path / "chart.png")
    texts = [b for b in laid["boxes"] if b["tag"] == "text"]
    names = [b for b in texts if b["text"] in {n for n, lat, _ in TARGETS if lat}]
    assert len(names) == 5 and any("ms" in b["text"] for b in texts)  # every measured target, the unit
    assert sum(1 for b in texts if re.fullmatch(r"[0-9.]+", b["text"])) >= 6  # tick labels on both axes
    points = [b for b in laid["boxes"] if b["tag"] == "circle"]
    for i, a in enumerate(names):
        assert all(not _overlap(a, b) for b in names[i + 1:] + points), a
    f = laid["frame"]
    for a in texts:  # nothing clipped by the chart's edges (axis titles included)
        assert f["l"] <= a["l"] and a["r"] <= f["r"] and f["t"] <= a["t"] and a["b"] <= f["b"], a
    image = cv2.imread(str(tmp_path / "chart.png"))
    green = np.all(np.abs(image.astype(int) - [0x77, 0xaa, 0x22]) < 40, axis=2)  # the "ok" points, BGR
    assert green.sum() > 5 * 60, "the screenshot shows no point"
