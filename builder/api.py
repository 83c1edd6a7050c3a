"""`edgectl build`: model in → bundle out. One failing target never stops the others."""

from __future__ import annotations

import logging
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from fleet import keys
from runtimes.bundle import sha256_file

from . import data, spec
from .assemble import Assembly, TargetResult, write_bundle
from .context import BuildContext
from .errors import OutputError
from .evaluate import choose_golden, reference_outputs
from .inputs import to_onnx
from .onnxinfo import inspect
from .run_targets import run_target
from .targets import parse_targets

log = logging.getLogger(__name__)


@dataclass
class BuildRequest:
    model: Path
    calib: Path
    out: Path
    val: Path | None = None
    targets: str = "all"
    name: str | None = None
    version: int = 1
    labels: Path | None = None
    task: str = "classify"
    preprocess: str | None = None
    input_name: str | None = None
    min_top1: float = 0.90
    min_top5: float = 0.98
    min_top1_fp16: float = 0.97
    strict: bool = False
    force: bool = False

    def thresholds(self, precision: str) -> tuple[float, float]:
        return {"fp32": (0.99, 0.99), "fp16": (self.min_top1_fp16, self.min_top5)}.get(
            precision, (self.min_top1, self.min_top5))


def check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise OutputError(f"{out}: not empty (use --force to replace it)")


def build(req: BuildRequest, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    started = time.monotonic()
    check_out(req.out, req.force)
    targets = parse_targets(req.targets)
    signer = keys.load_or_init()
    req.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{req.out.name}.", dir=req.out.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="edgectl-build-") as tmp:
            assembly = _prepare(req, Path(tmp), staging, console)
            results = [run_target(t, assembly, req, console) for t in targets]
            write_bundle(assembly, results, signer, time.monotonic() - started)
        _replace(staging, req.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _summary(req.out, results, time.monotonic() - started)


def _prepare(req: BuildRequest, work: Path, staging: Path, console: Console) -> Assembly:
    with console.status("reading the model and the calibration set"):
        source, fmt = to_onnx(req.model, work)
        info = inspect(source, req.input_name)
        side = spec.sidecar(req.model)
        pre = spec.preprocess(info, side, req.preprocess)
        post = spec.postprocess(side.get("task", req.task), side)
        # Detect rows are (cx, cy, w, h, class scores…): four columns are not classes.
        columns = info.outputs[0].shape[-1] if info.outputs[0].shape else 0
        classes = max(columns - 4, 0) if post.kind == "detect" else columns
        labels = spec.labels(req.labels, side, classes)
        calib, val = _image_sets(req, pre)
        reference = reference_outputs(source, pre, info.input, val.images)
    ctx = BuildContext(source, info, pre, calib.images, work, lambda m: log.info("%s", m))
    golden = choose_golden(reference, post)
    return Assembly(
        ctx=ctx, root=staging, name=req.name or side.get("name") or req.model.stem, version=req.version,
        source_name=req.model.name, source_sha256=_source_digest(req.model, source), source_format=fmt,
        task=side.get("task", req.task), labels=labels, post=post, val=val.images, reference=reference,
        golden=golden, started=datetime.now(UTC).isoformat(timespec="seconds"))


def _image_sets(req: BuildRequest, pre: Any) -> tuple[data.ImageSet, data.ImageSet]:
    calib = data.load(req.calib, pre, "calibration")
    if req.val is None:
        return data.split(calib)
    val = data.load(req.val, pre, "validation")
    data.check_disjoint(calib, val, req.calib, req.val)
    return calib, val


def _source_digest(model: Path, onnx_path: Path) -> str:
    return sha256_file(model) if model.is_file() else sha256_file(onnx_path)


def _replace(staging: Path, out: Path) -> None:
    """Swap the finished bundle into place; a half-built bundle is never visible at --out."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def _summary(out: Path, results: list[TargetResult], seconds: float) -> dict[str, Any]:
    return {"bundle": str(out), "seconds": round(seconds, 2),
            "targets": [r.summary() for r in results]}


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count() or 1, "arch": platform.machine()}
