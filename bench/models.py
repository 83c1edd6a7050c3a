"""Build every model of our real set with every target; print one JSON object: per model the build time, each
target's status, agreement before and after accuracy recovery, the layers kept in float, size, and the latency
of the fastest INT8 artifact against the FP32 ONNX (both measured on this host in the same build).

    .venv/bin/python bench/models.py [--out DIR] [--only NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODELS = ROOT / "assets" / "models"
SET = {  # model file: calibration/validation folder prefix in the media cache
    "efficientnet_lite0.onnx": "",
    "face_detection_short_range.tflite": "faces_",
    "ppocr_v4_det.onnx": "text_",
    "ppocr_mobile_v2_cls.onnx": "textlines_",
    "face_landmark.tflite": "facecrops_",
    "ppocr_v4_rec.onnx": "textlines_",
    "selfie_segmentation.tflite": "faces_",
}


def build_one(model: Path, prefix: str, media: Path, out: Path) -> dict[str, Any]:
    from builder.api import BuildRequest, build
    from builder.errors import BuilderError
    from edgectl.output import stdout_to_log
    from runtimes.errors import RuntimesError

    started = time.monotonic()
    try:
        with stdout_to_log():
            summary = build(BuildRequest(model=model, calib=media / f"{prefix}calib", val=media / f"{prefix}val",
                                         out=out, force=True))
    except (BuilderError, RuntimesError) as exc:
        return {"seconds": round(time.monotonic() - started, 1), "error": str(exc)}
    report = json.loads((out / "report.json").read_text())
    rows = report["targets"]
    return {"task": report["model"]["task"], "seconds": summary["seconds"],
            "targets": {r["target"]: _row(r) for r in rows}, **_speed(rows)}


def _row(r: dict[str, Any]) -> dict[str, Any]:
    rec = r.get("recovery") or {}
    return {"status": r["status"], "agreement": r["agreement"], "bytes": r["bytes"], "latency_ms": r["latency_ms"],
            "agreement_before_recovery": rec.get("agreement_before"), "kept_float": rec.get("kept_float"),
            "recovery_s": rec.get("seconds"), "reason": r["reason"]}


def _speed(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fp32 = next((r["latency_ms"] for r in rows if r["target"] == "onnx-fp32" and r["latency_ms"]), None)
    int8 = [r for r in rows if r["target"].endswith("int8") and r["status"] == "ok" and r["latency_ms"]]
    best = min(int8, key=lambda r: r["latency_ms"], default=None)
    if fp32 is None or best is None:
        return {"fastest_int8": None, "int8_vs_fp32": None}
    return {"fastest_int8": best["target"], "fastest_int8_ms": best["latency_ms"], "onnx_fp32_ms": fp32,
            "int8_vs_fp32": round(best["latency_ms"] / fp32, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--only", default=None)
    args = parser.parse_args()
    os.environ.setdefault("EDGECTL_HOME", tempfile.mkdtemp(prefix="edgectl-bench-"))
    from scripts.make_media import ensure_media

    media = ensure_media()
    out = args.out or Path(tempfile.mkdtemp(prefix="edgectl-models-"))
    results = {}
    for name, prefix in SET.items():
        if args.only and args.only not in name:
            continue
        print(f"bench/models: {name}", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):
            results[name] = build_one(MODELS / name, prefix, media, out / name.split(".")[0])
    print(json.dumps({"cpu": _cpu(), "models": results}, indent=2))


def _cpu() -> str:
    from builder.report import host_info

    info = host_info()
    return f"{info['cpu']} ({info['cores']} cores)"


if __name__ == "__main__":
    main()
