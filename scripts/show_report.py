"""Print a bundle's report.json as a table (used by the demo)."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
print(f"\nbundle {out}  ({report['seconds']:.0f} s, {report['validation_images']} validation images)")
keys = report.get("measures") or ["top1", "top5"]
strict, loose = keys[0], keys[1 if len(keys) > 1 else 0]
w1, w2 = max(6, len(strict)), max(6, len(loose))
print(f"{'target':14} {'status':8} {strict:>{w1}} {loose:>{w2}} {'ms':>7} {'MB':>6}")
for t in report["targets"]:
    a = t["agreement"] or {}
    print(f"{t['target']:14} {t['status']:8} {a.get(strict, 0):{w1}.3f} {a.get(loose, 0):{w2}.3f} "
          f"{t['latency_ms'] or 0:7.2f} {(t['bytes'] or 0) / 1e6:6.1f}  {t['reason'] or ''}")
print(f"report: {out / 'report.html'}\n")
