"""Build, check and gate one target; every failure becomes a reason in the report, not a crash."""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from typing import TYPE_CHECKING

from rich.console import Console

from runtimes.manifest import Artifact
from runtimes.metrics import Agreement
from runtimes.tasks import Postprocess

from .assemble import Assembly, TargetResult, artifact_bytes
from .evaluate import evaluate
from .targets import TargetDef

if TYPE_CHECKING:
    from .api import BuildRequest

log = logging.getLogger(__name__)


def run_target(target: TargetDef, asm: Assembly, req: BuildRequest, console: Console) -> TargetResult:
    started = time.monotonic()
    with console.status(f"[bold]{target.name}[/bold]: building") as status:
        asm.ctx.progress = lambda msg: status.update(f"[bold]{target.name}[/bold]: {msg}")
        result = _build_and_check(target, asm, req)
    result.seconds = round(time.monotonic() - started, 2)
    colour = {"ok": "green", "rejected": "yellow"}.get(result.status, "red")
    agr = ""
    if result.evaluation:
        measure, value = result.evaluation.agreement.primary
        agr = f" {measure.name} {value:.3f}"
    console.print(f"[{colour}]{result.status:8}[/{colour}] {target.name:14} {result.seconds:6.1f} s{agr}"
                  + (f"  ({result.reason})" if result.reason else ""), highlight=False)
    return result


def _build_and_check(target: TargetDef, asm: Assembly, req: BuildRequest) -> TargetResult:
    try:
        out = target.build(asm.ctx, asm.root)
        artifact = Artifact(target=target.name, runtime=target.runtime, precision=target.precision,
                            files=out.files, inputs=out.inputs, outputs=out.outputs, requires=out.requires,
                            settings=out.settings)
    except Exception as exc:  # one failing target never stops the others
        log.debug("%s failed:\n%s", target.name, traceback.format_exc())
        _remove(asm, target.name)
        return TargetResult(target.name, "failed", _first_line(exc))
    try:
        asm.ctx.progress(f"checking on {target.check_runtime}")
        evaluation = evaluate(target, artifact, asm.root, asm.ctx.pre, asm.post, asm.val, asm.reference)
    except Exception as exc:
        _remove(asm, target.name)
        return TargetResult(target.name, "failed", f"built, but could not run: {_first_line(exc)}")
    size = artifact_bytes(asm.root, artifact)
    reason = _gate(target.precision, evaluation.agreement, req, asm.post)
    if reason:
        _remove(asm, target.name)
        return TargetResult(target.name, "rejected", reason, evaluation=evaluation, bytes=size)
    return TargetResult(target.name, "ok", None, artifact=artifact, evaluation=evaluation, bytes=size)


def _gate(precision: str, agreed: Agreement, req: BuildRequest, post: Postprocess) -> str | None:
    return agreed.shortfall(req.gate(post, precision))


def _remove(asm: Assembly, target: str) -> None:
    shutil.rmtree(asm.root / target, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return lines[0] if len(lines) == 1 else lines[0] + " … " + lines[-1]
