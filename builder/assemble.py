"""Golden vectors, report, manifest with every file's sha256, and the signature."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from runtimes import signing
from runtimes.bundle import MANIFEST, SIGNATURE, file_entry
from runtimes.manifest import Artifact, Golden, Manifest, Source, Tolerance
from runtimes.processing import Array
from runtimes.tasks import Outputs, Postprocess

from . import report
from .context import BuildContext
from .evaluate import Evaluation
from .keys import SigningKey

BUILDER_VERSION = "0.1.0"


@dataclass
class Assembly:
    ctx: BuildContext
    root: Path
    name: str
    version: int
    source_name: str
    source_sha256: str
    source_format: str
    task: str
    labels: list[str]
    post: Postprocess
    val: Array
    reference: Outputs
    golden: Array
    started: str


@dataclass
class TargetResult:
    target: str
    status: str
    reason: str | None
    artifact: Artifact | None = None
    evaluation: Evaluation | None = None
    bytes: int | None = None
    seconds: float = 0.0
    # Accuracy recovery, where it ran: layers kept in float, agreement and latency before and after.
    recovery: dict[str, Any] | None = None
    # Taken from the build cache (builder/cache.py) instead of converted and measured again.
    cached: bool = False

    def summary(self) -> dict[str, Any]:
        agreement = self.evaluation.agreement.as_dict() if self.evaluation else None
        return {"target": self.target, "status": self.status, "reason": self.reason, "seconds": self.seconds,
                "bytes": self.bytes, "agreement": agreement, "recovery": self.recovery, "cached": self.cached}

    def report_row(self) -> dict[str, Any]:
        ev = self.evaluation
        return {**self.summary(), "latency_ms": round(ev.latency_ms, 3) if ev else None,
                "checked_on": ev.executed_on if ev else None}


def artifact_bytes(root: Path, artifact: Artifact) -> int:
    return sum((root / f).stat().st_size for f in artifact.files)


def write_golden(asm: Assembly) -> Golden:
    """The golden images and the FP32 outputs post-processing reads, with the task's tolerances per precision."""
    (asm.root / "golden").mkdir(exist_ok=True)
    np.save(asm.root / "golden" / "images.npy", asm.val[asm.golden])
    names = asm.post.output_names()
    np.savez(asm.root / "golden" / "reference.npz", *[asm.reference[n][asm.golden].astype(np.float32) for n in names])
    tolerances = {p: Tolerance(min=mins) for p, mins in asm.post.golden.items()}
    return Golden(images="golden/images.npy", reference="golden/reference.npz", count=len(asm.golden),
                  outputs=names, tolerances=tolerances)


def write_bundle(asm: Assembly, results: list[TargetResult], signer: SigningKey, seconds: float) -> Manifest:
    golden = write_golden(asm)
    rows = [r.report_row() for r in results]
    report.write(asm.root, {
        "model": {"name": asm.name, "version": asm.version, "source": asm.source_name, "task": asm.task},
        "created": asm.started, "seconds": round(seconds, 2), "host": report.host_info(),
        "measures": [m.key for m in asm.post.measures], "postprocess": asm.post.model_dump(mode="json"),
        "validation_images": len(asm.val), "golden_images": golden.count, "targets": rows}, asm.post.measures)
    listed = sorted(p.relative_to(asm.root).as_posix() for p in asm.root.rglob("*")
                    if p.is_file() and p.name not in (MANIFEST, SIGNATURE))
    manifest = Manifest(
        name=asm.name, version=asm.version, created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        source=Source(filename=asm.source_name, sha256=asm.source_sha256, format=asm.source_format),
        task=asm.task, labels=asm.labels, preprocess=asm.ctx.pre, postprocess=asm.post,
        artifacts=[r.artifact for r in results if r.artifact is not None], golden=golden,
        files=[file_entry(asm.root, rel) for rel in listed],
        builder={"edgectl": BUILDER_VERSION, "signing_key": signer.key_id})
    data = manifest.model_dump_json(indent=2).encode()
    (asm.root / MANIFEST).write_bytes(data)
    (asm.root / SIGNATURE).write_bytes(signing.sign(data, signer.private, signer.public_pem))
    return manifest
