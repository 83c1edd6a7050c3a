"""From a verified bundle to a warm engine: cached selection, then the selected candidate and the runner-up."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet.messages import ModelRef, RuntimeRef
from runtimes.bundle import Bundle
from runtimes.errors import RuntimesError

from ..errors import AgentError
from . import quickstart, selection
from .candidates import Candidate
from .engine import Engine, Failover, Pending, Slot
from .probe import Probe

log = logging.getLogger(__name__)
LAZY_BELOW_MB = 4096  # `runner_up = "auto"`: below this much memory a second warm runtime costs too much


@dataclass
class Serving:
    bundle: Bundle
    selection: selection.Selection
    engine: Engine

    def active_candidate(self) -> Candidate | None:
        """The selected candidate, or the runner-up once the engine has failed over to it."""
        if self.engine.active.key == self.selection.selected.key:
            return self.selection.selected
        return self.selection.runner_up

    def refs(self) -> tuple[ModelRef, RuntimeRef | None]:
        """What status says this serves: the bundle, and the candidate active now (the runner-up after a
        failover)."""
        m, cand = self.bundle.manifest, self.active_candidate()
        model = ModelRef(name=m.name, version=m.version, digest=self.bundle.digest)
        if cand is None:
            return model, None
        return model, RuntimeRef(target=cand.target, runtime=cand.runtime, device=cand.device,
                                 executes_on=self.engine.active.model.adapter.executing())

    def runtime(self) -> tuple[str | None, str | None]:
        cand = self.active_candidate()
        if cand is None:
            return None, None
        return f"{cand.target}/{cand.runtime}", self.engine.active.model.adapter.executing()


def select_isolated(bundle: Bundle, probe: Probe, state_dir: Path, budget_s: float, source: Path | None,
                    force: bool, under_load: bool = False) -> selection.Selection:
    """The cached decision, or a fresh one measured in a child process: a candidate that crashes its
    runtime during the golden check cannot take the serving agent down, and the memory of the
    candidates that lose is given back to the system when the child exits."""
    path = selection.cache_path(state_dir, bundle, probe, source)
    if not force and (hit := selection.load_cached(path)) is not None:
        return hit
    cmd = [sys.executable, "-m", "agent", "select", str(bundle.root), "--state-dir", str(state_dir),
           "--budget", str(budget_s), "--reselect", "--json"] + (["--source", str(source)] if source else []) \
        + (["--under-load"] if under_load else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    # Read the child's answer from its stdout, not from the cache: a state directory that takes no writes
    # must not stop the device from serving.
    fresh = _decision(proc.stdout) if proc.returncode == 0 else None
    if fresh is None:
        tail = (proc.stderr.strip().splitlines() or ["no output"])
        cause = "\n".join(line for line in tail if not line.startswith("INFO"))[-2000:]
        raise AgentError(f"selection failed (exit {proc.returncode}): {cause}")
    return fresh


def _decision(stdout: str) -> selection.Selection | None:
    try:
        return selection.from_dict(json.loads(stdout))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class ServingSettings:
    """How every model of this device is brought to serving; built once from the config."""

    probe: Probe
    state_dir: Path
    budget_s: float
    stuck_timeout_s: float
    runner_up: str = "warm"

    def start(self, bundle: Bundle, on_failover: Callable[[Failover], None], source: Path | None = None,
              force: bool = False, under_load: bool = False, quick: bool = False) -> Serving:
        """`quick`: when this device has no decision for the bundle yet, serve a safe candidate now (its
        selection says `provisional`; the caller runs the full one next)."""
        if quick and not force and selection.load_cached(self._cache(bundle, source)) is None:
            found = quickstart.provisional(bundle, self.probe)
            if found is not None:
                sel, model = found
                engine = Engine(Slot(sel.selected.key, model), None, self.stuck_timeout_s, on_failover,
                                labels=bundle.manifest.labels)
                return Serving(bundle, sel, engine)
        sel = select_isolated(bundle, self.probe, self.state_dir, self.budget_s, source, force, under_load)
        primary = _load(bundle, sel.selected)
        if primary is None:  # the cached choice no longer loads: measure again
            sel = select_isolated(bundle, self.probe, self.state_dir, self.budget_s, source, force=True)
            primary = _load(bundle, sel.selected)
            if primary is None:
                raise RuntimesError(f"selected candidate {sel.selected.key} does not load")
        runner = _runner_up(bundle, sel.runner_up, self.lazy) if sel.runner_up else None
        engine = Engine(primary, runner, self.stuck_timeout_s, on_failover, labels=bundle.manifest.labels)
        return Serving(bundle, sel, engine)

    def _cache(self, bundle: Bundle, source: Path | None) -> Path:
        return selection.cache_path(self.state_dir, bundle, self.probe, source)

    @property
    def lazy(self) -> bool:
        return self.runner_up == "lazy" or (self.runner_up == "auto" and 0 < self.probe.memory_mb < LAZY_BELOW_MB)


def _load(bundle: Bundle, cand: Candidate) -> Slot | None:
    try:
        return Slot(cand.key, selection.load_candidate(bundle, cand))
    except RuntimesError as exc:
        log.warning("candidate %s does not load: %s", cand.key, exc)
        return None


def _runner_up(bundle: Bundle, cand: Candidate, lazy: bool) -> Slot | Pending | None:
    """Warm: loaded now, so failover costs one frame. Lazy: loaded on failover, so it costs no memory until
    then (its runtime library is not even imported) but the failover waits for the load."""
    if lazy:
        return cand.key, lambda: Slot(cand.key, selection.load_candidate(bundle, cand))
    return _load(bundle, cand)


def first_that_serves(roots: list[Path], serve: Callable[[Path], Serving],
                      on_error: Callable[[str], None]) -> Serving | None:
    """The first bundle that opens, verifies, selects and loads; each one that does not is reported."""
    for root in roots:
        try:
            return serve(root)
        except (RuntimesError, AgentError, OSError) as exc:
            on_error(f"cannot serve {root}: {exc}")
    return None
