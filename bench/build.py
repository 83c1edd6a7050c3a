"""Build EfficientNet-Lite0 with every target; print one JSON object: time, size, agreement, peak memory.

    .venv/bin/python bench/build.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("EDGECTL_HOME", tempfile.mkdtemp(prefix="edgectl-bench-"))
    from builder.api import BuildRequest, build
    from edgectl.output import stdout_to_log
    from scripts.make_media import ensure_media

    media = ensure_media()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-build-")) / "bundle"
    started = time.monotonic()
    with stdout_to_log():  # converters print to stdout; ours carries one JSON object
        summary = build(BuildRequest(model=ROOT / "assets/models/efficientnet_lite0.onnx", calib=media / "calib",
                                     val=media / "val", out=out, force=True))
    report = json.loads((out / "report.json").read_text())
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps({
        "model": "efficientnet-lite0", "total_seconds": round(time.monotonic() - started, 1),
        "validation_images": report["validation_images"],
        "peak_rss_mb": round(peak_mb), "peak_rss_note": "largest of the builder and its children (the TF toolchain)",
        "goal": {"cpu_targets_total_s": 150, "int8_top1": 0.92, "int8_top5": 0.98, "fp16_top1": 0.97},
        "targets": [{k: t[k] for k in ("target", "status", "seconds", "bytes", "agreement", "latency_ms", "reason")}
                    for t in report["targets"]],
        "bundle": summary["bundle"],
    }, indent=2))


if __name__ == "__main__":
    main()
