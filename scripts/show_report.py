"""Print a bundle's report.json as a table (used by the demo)."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
print(f"\nbundle {out}  ({report['seconds']:.0f} s, {report['validation_images']} validation images)")
detect = report["model"].get("task") == "detect"
print(f"{'target':14} {'status':8} {'boxes' if detect else 'top-1':>6} {'iou.3' if detect else 'top-5':>6} "
      f"{'ms':>7} {'MB':>6}")
for t in report["targets"]:
    a = t["agreement"] or {}
    strict, loose = a.get("top1", a.get("boxes", 0)), a.get("top5", a.get("boxes_iou30", 0))
    print(f"{t['target']:14} {t['status']:8} {strict:6.3f} {loose:6.3f} "
          f"{t['latency_ms'] or 0:7.2f} {(t['bytes'] or 0) / 1e6:6.1f}  {t['reason'] or ''}")
print(f"report: {out / 'report.html'}\n")
