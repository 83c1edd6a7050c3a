"""Does batching the frames of several cameras pay on this device? Prints one JSON object.

For each artifact that takes a dynamic batch, on its runtime: n one-image calls vs one call with n images,
interleaved in one run (agent.video.batching.measure_gain, the measurement the agent makes before it batches),
for the classifier (EfficientNet-Lite0) and the detector (BlazeFace), n = 2 and 4.

    .venv/bin/python bench/batching.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from common import ROOT, demo_bundle, home

from agent.inference.candidates import enumerate_candidates
from agent.inference.engine import Engine, Slot
from agent.inference.probe import probe
from agent.inference.selection import load_candidate
from agent.video.batching import MIN_GAIN, measure_gain
from runtimes.bundle import open_bundle

CHOICES = [("onnx-fp32", "onnxruntime"), ("onnx-int8", "onnxruntime"), ("openvino-int8", "openvino"),
           ("onnx-int8", "openvino")]


def face_bundle() -> Path:
    from builder.api import BuildRequest, build
    from scripts.make_media import ensure_media

    out = ROOT / "out" / "bench-faces"
    if not (out / "manifest.json").is_file():
        media = ensure_media()
        build(BuildRequest(model=ROOT / "assets/models/face_detection_short_range.tflite", calib=media / "faces_calib",
                           val=media / "faces_val", out=out, targets="onnx-fp32,onnx-int8,openvino-int8", force=True))
    return out


def gains(root: Path) -> dict[str, dict[str, float]]:
    bundle = open_bundle(root)
    images = np.load(root / bundle.manifest.golden.images)
    out: dict[str, dict[str, float]] = {}
    cands = enumerate_candidates(bundle.manifest, probe())
    for target, runtime in CHOICES:
        cand = next((c for c in cands if c.target == target and c.runtime == runtime
                     and c.settings.get("threads") == 2), None)
        if cand is None:
            continue
        engine = Engine(Slot(cand.key, load_candidate(bundle, cand)), None)
        try:
            out[f"{target}/{runtime}"] = {f"n{n}": round(statistics.median(
                measure_gain(engine, images[:n]) for _ in range(3)), 2) for n in (2, 4)}
        finally:
            engine.close()
    return out


def main() -> None:
    home()
    result = {"classifier": gains(demo_bundle()), "detector": gains(face_bundle()), "batch_at_gain": MIN_GAIN}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
