"""What the build cache keeps for a build: each target's result under a key of what decides it, and the FP32
reference outputs. The model's name, version and labels are not in any key: they do not change an artifact."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from runtimes.bundle import sha256_file
from runtimes.manifest import Artifact
from runtimes.metrics import Agreement
from runtimes.processing import Array
from runtimes.tasks import Outputs

from . import toolchains
from .assemble import Assembly, TargetResult
from .cache import BuildCache, key_of
from .evaluate import Evaluation
from .targets import TargetDef


def array_digest(array: Array) -> str:
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def shared_material(asm: Assembly) -> dict[str, Any]:
    """What every target's key shares, hashed once per build: the graph the targets convert (after the
    sidecar's and the flags' shape fixes), the pre- and post-processing, and both image sets."""
    ctx = asm.ctx
    return {"source": sha256_file(ctx.source), "input": ctx.info.input.model_dump(mode="json"),
            "preprocess": ctx.pre.model_dump(mode="json"), "postprocess": asm.post.model_dump(mode="json"),
            "calib": array_digest(ctx.calib), "val": array_digest(asm.val)}


def target_key(target: TargetDef, shared: dict[str, Any], gate: dict[str, float], budget_s: float) -> str:
    parts = {"target": target.name, "gate": gate, **shared,
             "recovery_budget_s": budget_s if target.recover is not None else None}
    if target.format == "tflite":  # converted in its toolchain: its pins decide the artifact too
        parts["toolchain"] = toolchains.stamp("tflite")
    return key_of(parts)


def reference_key(asm_source: Path, shared_input: dict[str, Any], pre: dict[str, Any], val: str) -> str:
    return key_of({"reference": sha256_file(asm_source), "input": shared_input, "preprocess": pre, "val": val})


def load_reference(cache: BuildCache, key: str) -> Outputs | None:
    entry = cache.get(key)
    if entry is None or not (entry / "files" / "reference.npz").is_file():
        return None
    with np.load(entry / "files" / "reference.npz") as saved:
        names = json.loads((entry / "entry.json").read_text())["outputs"]
        return {name: saved[f"arr_{i}"] for i, name in enumerate(names)}


def store_reference(cache: BuildCache, key: str, reference: Outputs, work: Path) -> None:
    folder = work / "reference-cache"
    folder.mkdir(exist_ok=True)
    names = list(reference)
    np.savez(folder / "reference.npz", *[reference[n] for n in names])
    cache.put(key, folder, {"outputs": names})


def load_target(cache: BuildCache, key: str, target: TargetDef, asm: Assembly) -> TargetResult | None:
    """The cached result with its files copied into the bundle being assembled, or None on a miss."""
    entry = cache.get(key)
    if entry is None:
        return None
    record = json.loads((entry / "entry.json").read_text())
    if (entry / "files").is_dir():
        shutil.rmtree(asm.root / target.name, ignore_errors=True)
        shutil.copytree(entry / "files", asm.root / target.name)
    ev = record["evaluation"]
    evaluation = Evaluation(Agreement(ev["values"], ev["count"], ev["max_abs"], tuple(asm.post.measures)),
                            ev["latency_ms"], ev["executed_on"]) if ev else None
    artifact = Artifact.model_validate(record["artifact"]) if record["artifact"] else None
    return TargetResult(target.name, record["status"], record["reason"], artifact=artifact, evaluation=evaluation,
                        bytes=record["bytes"], recovery=record["recovery"], cached=True)


def store_target(cache: BuildCache, key: str, result: TargetResult, asm: Assembly) -> None:
    """Keep an ok or rejected result (a failure may be the machine's, so it is tried again next time)."""
    if result.status not in ("ok", "rejected"):
        return
    ev = result.evaluation
    record = {"status": result.status, "reason": result.reason, "bytes": result.bytes, "recovery": result.recovery,
              "artifact": result.artifact.model_dump(mode="json") if result.artifact else None,
              "evaluation": {"values": ev.agreement.values, "count": ev.agreement.count,
                             "max_abs": ev.agreement.max_abs, "latency_ms": ev.latency_ms,
                             "executed_on": ev.executed_on} if ev else None}
    files = asm.root / result.target
    cache.put(key, files if result.artifact is not None else None, record)
