#!/usr/bin/env bash
# The main job: set up, build a signed bundle from the real EfficientNet-Lite0, and show it;
# then probe this device. (Grows with the agent and fleet: agent on the demo video, `edgectl status`.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EDGECTL_HOME=${EDGECTL_HOME:-$PWD/.cache/demo-home}
OUT=${OUT:-$PWD/out/demo-bundle}
M=.cache/media

echo "== edgectl build (all six targets; onnx2tf takes about a minute) ==" >&2
.venv/bin/edgectl build assets/models/efficientnet_lite0.onnx --calib "$M/calib" --val "$M/val" \
  --name efficientnet-lite0 --version 1 --out "$OUT" --force --json > out/build.json
.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
report = json.loads((out / "report.json").read_text())
print(f"\nbundle {out}  ({report['seconds']:.0f} s, {report['validation_images']} validation images)")
print(f"{'target':14} {'status':8} {'top-1':>6} {'top-5':>6} {'ms':>7} {'MB':>6}")
for t in report["targets"]:
    a = t["agreement"] or {}
    print(f"{t['target']:14} {t['status']:8} {a.get('top1', 0):6.3f} {a.get('top5', 0):6.3f} "
          f"{t['latency_ms'] or 0:7.2f} {(t['bytes'] or 0) / 1e6:6.1f}  {t['reason'] or ''}")
print(f"report: {out / 'report.html'}")
PY
echo "== signing key devices should trust ==" >&2
.venv/bin/edgectl keys list
echo "== edge-agent probe ==" >&2
.venv/bin/edge-agent probe
