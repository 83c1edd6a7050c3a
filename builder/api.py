"""`edgectl build`: model in → bundle out. One failing target never stops the others."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console

from runtimes.bundle import sha256_file
from runtimes.manifest import Preprocess
from runtimes.processing import to_input
from runtimes.tasks import Outputs, Postprocess

from . import data, keys, reuse, spec
from .assemble import Assembly, TargetResult, write_bundle
from .cache import BuildCache, default_dir
from .context import BuildContext, Judge
from .errors import BuildFailed, OutputError
from .evaluate import choose_golden, reference_outputs
from .inputs import to_onnx
from .onnxinfo import OnnxInfo, fix_shapes, inspect, parse_shapes
from .run_targets import print_result, run_target
from .targets import TargetDef, parse_targets

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
    task: str | None = None
    preprocess: str | None = None
    postprocess: str | None = None
    input_name: str | None = None
    input_shapes: list[str] = field(default_factory=list)
    # Classifier gates (INT8: top-1 where FP32 is confident, and top-5; FP16: top-1).
    min_top1: float | None = None
    min_top5: float | None = None
    min_top1_fp16: float | None = None
    # Any task: the minimum of the task's first measure for INT8 and for FP16 artifacts.
    min_agreement: float | None = None
    min_agreement_fp16: float | None = None
    # Seconds each INT8 target may spend keeping layers in float to meet its gate (0: no recovery).
    recovery_budget_s: float = 240.0
    strict: bool = False
    force: bool = False
    # The build cache (builder/cache.py): None is its default directory; use_cache=False neither reads nor writes.
    cache_dir: Path | None = None
    use_cache: bool = True

    def gate(self, post: Postprocess, precision: str) -> dict[str, float]:
        """The minimum of each measure an artifact of this precision must meet: the task's, then the flags."""
        mins = dict(post.gates.get(precision) or post.gates["int8"])
        primary = post.measures[0].key
        if precision in ("int8",):
            _put(mins, primary, self.min_agreement)
            if post.kind == "classify":
                _put(mins, "top1_confident", self.min_top1)
                _put(mins, "top5", self.min_top5)
        elif precision in ("fp16", "bf16"):
            key = "top1" if post.kind == "classify" else primary
            _put(mins, key, self.min_top1_fp16 if post.kind == "classify" else None)
            _put(mins, key, self.min_agreement_fp16)
        return mins


def _put(mins: dict[str, float], key: str, value: float | None) -> None:
    if value is not None:
        mins[key] = value


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
            cache = _cache(req)
            assembly = _prepare(req, Path(tmp), staging, console, cache)
            shared = reuse.shared_material(assembly) if cache else {}
            results = [_target(t, assembly, req, console, cache, shared) for t in targets]
            if not any(r.status == "ok" for r in results):
                summary = _summary(req.out, results, time.monotonic() - started)
                reasons = "; ".join(f"{r.target}: {r.reason}" for r in results)
                raise BuildFailed(f"no artifact passed: {reasons or 'no target ran'}; nothing was signed", summary)
            write_bundle(assembly, results, signer, time.monotonic() - started)
        _replace(staging, req.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _summary(req.out, results, time.monotonic() - started)


def _cache(req: BuildRequest) -> BuildCache | None:
    return BuildCache(req.cache_dir or default_dir()) if req.use_cache else None


def _target(target: TargetDef, asm: Assembly, req: BuildRequest, console: Console, cache: BuildCache | None,
            shared: dict[str, Any]) -> TargetResult:
    """A cache hit, or the target built, checked and gated (and then kept for next time)."""
    if cache is None:
        return run_target(target, asm, req, console)
    key = reuse.target_key(target, shared, req.gate(asm.post, target.precision), req.recovery_budget_s)
    hit = reuse.load_target(cache, key, target, asm)
    if hit is not None:
        print_result(console, hit)
        return hit
    result = run_target(target, asm, req, console)
    reuse.store_target(cache, key, result, asm)
    return result


def _reference(cache: BuildCache | None, source: Path, pre: Preprocess, info: OnnxInfo, val: data.ImageSet,
               work: Path) -> Outputs:
    """The FP32 outputs on the validation images, from the cache when the graph, input and images match."""
    if cache is None:
        return reference_outputs(source, pre, info.input, val.images)
    key = reuse.reference_key(source, info.input.model_dump(mode="json"), pre.model_dump(mode="json"),
                              reuse.array_digest(val.images))
    found = reuse.load_reference(cache, key)
    if found is None:
        found = reference_outputs(source, pre, info.input, val.images)
        reuse.store_reference(cache, key, found, work)
    return found


def _prepare(req: BuildRequest, work: Path, staging: Path, console: Console, cache: BuildCache | None) -> Assembly:
    with console.status("reading the model and the calibration set"):
        source, fmt = to_onnx(req.model, work)
        info = inspect(source, req.input_name)
        side = spec.sidecar(req.model)
        shapes = parse_shapes(req.input_shapes) if req.input_shapes else spec.input_shapes(side)
        fixed = fix_shapes(source, work / "fixed.onnx", info, shapes)
        source, info = (fixed, inspect(fixed)) if fixed != source else (source, info)
        pre = spec.preprocess(info, side, req.preprocess)
        post = spec.postprocess(req.task, side, req.postprocess, info)
        labels = spec.labels(req.labels, side, spec.class_count(post, info))
        calib, val = _image_sets(req, pre)
        reference = _reference(cache, source, pre, info, val, work)
    ctx = BuildContext(source, info, pre, calib.images, work, lambda m: log.info("%s", m),
                       judge=_judge(req, post, pre, info, val.images, reference))
    golden = choose_golden(reference, post, (pre.height, pre.width))
    return Assembly(
        ctx=ctx, root=staging, name=req.name or side.get("name") or req.model.stem, version=req.version,
        source_name=req.model.name, source_sha256=_source_digest(req.model, source), source_format=fmt,
        task=post.kind, labels=labels, post=post, val=val.images, reference=reference,
        golden=golden, started=datetime.now(timezone.utc).isoformat(timespec="seconds"))


def _judge(req: BuildRequest, post: Postprocess, pre: Preprocess, info: OnnxInfo, images: Any,
           reference: Outputs) -> Judge:
    primary = post.measures[0].key
    size = (pre.height, pre.width)
    floor = req.gate(post, "int8").get(primary, 1.0)
    return Judge(to_input(images, pre, info.input.model_copy(update={"dtype": "float32"})),
                 lambda outputs: post.agreement(reference, outputs, size)[primary], max(0.0, 1.0 - floor))


def _image_sets(req: BuildRequest, pre: Any) -> tuple[data.ImageSet, data.ImageSet]:
    calib = data.load(req.calib, pre, "calibration")
    if req.val is None:
        calib, val = data.split(calib)
    else:
        val = data.load(req.val, pre, "validation")
        data.check_disjoint(calib, val, req.calib, req.val)
    data.check_sizes(calib, val, req.calib, req.val)
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
