"""Print a bundle's report.json as a table (used by the demo)."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
print(f"\nbundle {out}  ({report['seconds']:.0f} s, {report['validation_images']} validation images)")
print(f"{'target':14} {'status':8} {'top-1':>6} {'top-5':>6} {'ms':>7} {'MB':>6}")
for t in report["targets"]:
    a = t["agreement"] or {}
    print(f"{t['target']:14} {t['status']:8} {a.get('top1', 0):6.3f} {a.get('top5', 0):6.3f} "
          f"{t['latency_ms'] or 0:7.2f} {(t['bytes'] or 0) / 1e6:6.1f}  {t['reason'] or ''}")
print(f"report: {out / 'report.html'}\n")
