"""Print a bundle's report.json as a table (used by the demo)."""

import json
import sys
from pathlib import Path

from runtimes.metrics import MEASURES

out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
print(f"\nbundle {out}  ({report['seconds']:.0f} s, {report['validation_images']} validation images)")
strict, loose = MEASURES[report["model"].get("task", "classify")]
w1, w2 = max(6, len(strict.key)), max(6, len(loose.key))
print(f"{'target':14} {'status':8} {strict.key:>{w1}} {loose.key:>{w2}} {'ms':>7} {'MB':>6}")
for t in report["targets"]:
    a = t["agreement"] or {}
    print(f"{t['target']:14} {t['status']:8} {a.get(strict.key, 0):{w1}.3f} {a.get(loose.key, 0):{w2}.3f} "
          f"{t['latency_ms'] or 0:7.2f} {(t['bytes'] or 0) / 1e6:6.1f}  {t['reason'] or ''}")
print(f"report: {out / 'report.html'}\n")
