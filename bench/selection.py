"""On-device selection on the EfficientNet-Lite0 bundle; prints one JSON object.

(a) selected median vs the fastest in an independent long interleaved run of every candidate,
(b) selected vs a naive onnxruntime.InferenceSession on the FP32 ONNX with default options,
(c) selection wall time, and cached start → first result in a fresh process,
(d) in-agent inference (Engine: handoff + pre/post) vs the runtime's raw loop, (e) RSS.

    .venv/bin/python bench/selection.py [--bundle DIR] [--budget S] [--long S]

(Not select.py: a script named select.py in bench/ shadows the stdlib module for every script there.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST_RESULT = """
import time, sys; t0 = time.monotonic()
from pathlib import Path
import numpy as np
from agent.inference.probe import probe
from agent.inference import selection
from runtimes.bundle import open_bundle
b = open_bundle(Path(sys.argv[1])); hw = probe()
sel = selection.load_cached(selection.cache_path(Path(sys.argv[2]), b, hw, None))
m = selection.load_candidate(b, sel.selected)
m.infer_frame(np.zeros((480, 640, 3), np.uint8))
print(time.monotonic() - t0)
"""


def bundle_path(arg: Path | None) -> Path:
    if arg:
        return arg
    demo = ROOT / "out" / "demo-bundle"
    if (demo / "manifest.json").is_file():
        return demo
    out = Path(tempfile.mkdtemp(prefix="bench-select-")) / "bundle"
    subprocess.run([sys.executable, str(ROOT / "bench" / "build.py"), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def long_run(bundle, sel, seconds: float) -> tuple[dict[str, float], dict[str, float]]:  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    from agent.inference import benchmark, selection
    from runtimes.processing import to_input

    ok = [c for c in sel.candidates if c.status == "ok"]
    images = np.load(bundle.path(bundle.manifest.golden.images))[:1]
    steps, models = {}, []
    for c in ok:
        m = selection.load_candidate(bundle, c)
        models.append(m)
        steps[c.key] = (lambda m=m: m.infer_images(images))
    art = bundle.manifest.artifact("onnx-fp32")
    naive = ort.InferenceSession(str(bundle.artifact_files(art)[0]))
    x = to_input(images, bundle.manifest.preprocess, art.inputs[0])
    steps["naive-ort-fp32"] = lambda: naive.run(None, {art.inputs[0].name: x})
    samples, run = benchmark.interleaved(steps, seconds)
    for m in models:
        m.close()
    medians = {k: benchmark.median_p90(v)[0] for k, v in samples.items()}
    return medians, {"other_cpu_cores": round(run.other_cpu, 2), "rounds": run.rounds}


def in_agent_vs_raw(bundle, sel, seconds: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    from agent.inference import benchmark, selection
    from agent.inference.engine import Engine, Slot
    from runtimes.processing import to_input

    model = selection.load_candidate(bundle, sel.selected)
    raw = selection.load_candidate(bundle, sel.selected)
    engine = Engine(Slot(sel.selected.key, model), None)
    image = np.load(bundle.path(bundle.manifest.golden.images))[:1]
    frame = np.ascontiguousarray(image[0][:, :, ::-1])  # BGR at model size, as a camera at that size gives
    tensor = to_input(image, raw.pre, raw.artifact.inputs[0])
    samples, _ = benchmark.interleaved({"agent": lambda: engine.infer_images(image),
                                        "agent_frame": lambda: engine.infer_frame(frame),
                                        "raw": lambda: raw.adapter.infer([tensor])}, seconds)
    engine.close()
    raw.close()
    raw_ms = benchmark.median_p90(samples["raw"])[0]
    agent_ms, frame_ms = benchmark.median_p90(samples["agent"])[0], benchmark.median_p90(samples["agent_frame"])[0]
    return agent_ms / raw_ms, frame_ms / raw_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--budget", type=float, default=8.0)
    parser.add_argument("--long", type=float, default=30.0)
    args = parser.parse_args()
    import psutil

    from agent.inference import selection
    from agent.inference.probe import probe
    from runtimes.bundle import open_bundle

    bundle = open_bundle(bundle_path(args.bundle))
    hw = probe()
    sel = selection.select(bundle, hw, budget_s=args.budget)
    state = Path(tempfile.mkdtemp(prefix="bench-state-"))
    selection.save(selection.cache_path(state, bundle, hw, None), sel)
    first = subprocess.run([sys.executable, "-c", FIRST_RESULT, str(bundle.root), str(state)], cwd=ROOT,
                           capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    medians, run = long_run(bundle, sel, args.long)
    fastest = min((v, k) for k, v in medians.items() if k != "naive-ort-fp32")
    ratio_agent, ratio_frame = in_agent_vs_raw(bundle, sel, 10.0)
    print(json.dumps({
        "candidates": len(sel.candidates), "ok": sum(c.status == "ok" for c in sel.candidates),
        "selected": sel.selected.key, "runner_up": sel.runner_up.key if sel.runner_up else None,
        "selection_seconds": round(sel.seconds, 2), "selection_noisy": sel.noisy,
        "a_selected_over_fastest_long_run": round(medians[sel.selected.key] / fastest[0], 3),
        "a_fastest_in_long_run": fastest[1],
        "b_selected_over_naive_ort_fp32": round(medians[sel.selected.key] / medians["naive-ort-fp32"], 3),
        "c_cached_start_to_first_result_s": round(float(first.stdout.strip().splitlines()[-1]), 3),
        "d_in_agent_over_raw": round(ratio_agent, 3),
        "d_with_frame_resize_over_raw": round(ratio_frame, 3),
        "e_rss_mb": round(psutil.Process().memory_info().rss / 1e6),
        "long_run_medians_ms": {k: round(v, 3) for k, v in sorted(medians.items(), key=lambda kv: kv[1])},
        "long_run": run,
        "goals": {"a": 1.05, "b": 0.40, "selection_s": 20, "c_s": 1.5, "d": 1.05},
    }, indent=2))


if __name__ == "__main__":
    main()
