"""Build, check and gate one target; every failure becomes a reason in the report, not a crash."""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from runtimes.manifest import Artifact, legacy_runtime
from runtimes.metrics import Agreement
from runtimes.tasks import Postprocess

from .assemble import Assembly, TargetResult, artifact_bytes
from .context import BuildContext, TargetOutput
from .evaluate import Evaluation, evaluate
from .targets import TargetDef


class Policy(Protocol):
    """What the build asks of every artifact (Policy keeps it): the gate and the recovery budget."""

    recovery_budget_s: float

    def gate(self, post: Postprocess, precision: str) -> dict[str, float]: ...

log = logging.getLogger(__name__)


def run_target(target: TargetDef, asm: Assembly, req: Policy, console: Console) -> TargetResult:
    started = time.monotonic()
    with console.status(f"[bold]{target.name}[/bold]: building") as status:
        asm.ctx.progress = lambda msg: status.update(f"[bold]{target.name}[/bold]: {msg}")
        result = _build_and_check(target, asm, req)
    result.seconds = round(time.monotonic() - started, 2)
    print_result(console, result)
    return result


def print_result(console: Console, result: TargetResult) -> None:
    colour = {"ok": "green", "rejected": "yellow"}.get(result.status, "red")
    agr = ""
    if result.evaluation:
        measure, value = result.evaluation.agreement.primary
        agr = f" {measure.name} {value:.3f}"
    took = "  cached" if result.cached else f"{result.seconds:6.1f} s"
    console.print(f"[{colour}]{result.status:8}[/{colour}] {result.target:14} {took}{agr}"
                  + (f"  ({result.reason})" if result.reason else ""), highlight=False)


def _build_and_check(target: TargetDef, asm: Assembly, req: Policy) -> TargetResult:
    try:
        artifact, _ = _build(target, asm, target.build(asm.ctx, asm.root))
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
    reason = _gate(target.precision, evaluation.agreement, req, asm.post)
    if reason and target.recover is not None and req.recovery_budget_s > 0:
        return _recover(target, asm, req, (artifact, evaluation), reason, target.recover)
    return _result(target, asm, artifact, evaluation, reason)


def _build(target: TargetDef, asm: Assembly, out: TargetOutput) -> tuple[Artifact, list[str]]:
    artifact = Artifact(target=target.name, format=target.format, runtime=legacy_runtime(target.format),
                        precision=target.precision,
                        files=out.files, inputs=out.inputs, outputs=out.outputs, requires=out.requires,
                        settings=out.settings)
    return artifact, out.kept_float


def _result(target: TargetDef, asm: Assembly, artifact: Artifact, evaluation: Evaluation, reason: str | None,
            recovery: dict[str, Any] | None = None) -> TargetResult:
    size = artifact_bytes(asm.root, artifact)
    if reason:
        _remove(asm, target.name)
        return TargetResult(target.name, "rejected", reason, evaluation=evaluation, bytes=size, recovery=recovery)
    return TargetResult(target.name, "ok", None, artifact=artifact, evaluation=evaluation, bytes=size,
                        recovery=recovery)


def _recover(target: TargetDef, asm: Assembly, req: Policy, first: tuple[Artifact, Evaluation], reason: str,
             recover: Callable[[BuildContext, Path, int], TargetOutput | None]) -> TargetResult:
    """Rebuild with more of the graph in float until the gate passes, the options or the time budget end."""
    started, attempt = time.monotonic(), 0
    asm.ctx.recovery_deadline = started + req.recovery_budget_s
    best: tuple[Artifact, Evaluation, list[str]] = (*first, [])
    while time.monotonic() - started < req.recovery_budget_s:
        try:
            out = recover(asm.ctx, asm.root, attempt)
            if out is None:
                break
            artifact, kept = _build(target, asm, out)
            evaluation = evaluate(target, artifact, asm.root, asm.ctx.pre, asm.post, asm.val, asm.reference)
        except Exception as exc:  # a failed attempt ends recovery, not the build
            log.info("%s recovery attempt %d failed: %s", target.name, attempt, _first_line(exc))
            break
        attempt += 1
        if _gate(target.precision, evaluation.agreement, req, asm.post) is None:
            return _result(target, asm, artifact, evaluation, None,
                           _recovery(first[1], (artifact, evaluation, kept), started, attempt))
        if not best[2] or evaluation.agreement.primary[1] > best[1].agreement.primary[1]:
            best = (artifact, evaluation, kept)
    artifact, evaluation, kept = best
    if not kept:
        return _result(target, asm, artifact, evaluation, f"{reason}; recovery found no layer to keep in float")
    info = _recovery(first[1], best, started, attempt)
    final = _gate(target.precision, evaluation.agreement, req, asm.post)
    names = ", ".join(kept[:8]) + (", …" if len(kept) > 8 else "")
    why = f"{final} with {len(kept)} layer(s) kept in float ({names}) after {info['seconds']:.0f} s of recovery " \
          f"(before: {reason})"
    return _result(target, asm, artifact, evaluation, why, info)


def _recovery(first: Evaluation, best: tuple[Artifact, Evaluation, list[str]], started: float,
              attempts: int) -> dict[str, Any]:
    _, evaluation, kept = best
    return {"kept_float": kept, "attempts": attempts, "seconds": round(time.monotonic() - started, 1),
            "agreement_before": first.agreement.as_dict(), "agreement_after": evaluation.agreement.as_dict(),
            "latency_ms_before": round(first.latency_ms, 3), "latency_ms_after": round(evaluation.latency_ms, 3)}


def _gate(precision: str, agreed: Agreement, req: Policy, post: Postprocess) -> str | None:
    return agreed.shortfall(req.gate(post, precision))


def _remove(asm: Assembly, target: str) -> None:
    shutil.rmtree(asm.root / target, ignore_errors=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = text.splitlines()
    return lines[0] if len(lines) == 1 else lines[0] + " … " + lines[-1]
