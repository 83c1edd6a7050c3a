"""From a verified bundle to a warm engine: cached selection, then the selected candidate and the runner-up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from runtimes.bundle import Bundle
from runtimes.errors import RuntimesError

from . import selection
from .candidates import Candidate
from .engine import Engine, Failover, Slot
from .probe import Probe

log = logging.getLogger(__name__)


@dataclass
class Serving:
    bundle: Bundle
    selection: selection.Selection
    engine: Engine

    def runtime(self) -> tuple[str | None, str | None]:
        cand = self.selection.selected if self.engine.active.key == self.selection.selected.key else \
            self.selection.runner_up
        if cand is None:
            return None, None
        return f"{cand.target}/{cand.runtime}", self.engine.active.model.adapter.executing()


def start(bundle: Bundle, probe: Probe, state_dir: Path, budget_s: float, stuck_timeout_s: float,
          on_failover: Callable[[Failover], None], source: Path | None = None, force: bool = False) -> Serving:
    sel = selection.select_cached(bundle, probe, state_dir, budget_s, source, force=force)
    primary = _load(bundle, sel.selected)
    if primary is None:  # the cached choice no longer loads: measure again
        sel = selection.select_cached(bundle, probe, state_dir, budget_s, source, force=True)
        primary = _load(bundle, sel.selected)
        if primary is None:
            raise RuntimesError(f"selected candidate {sel.selected.key} does not load")
    runner = _load(bundle, sel.runner_up) if sel.runner_up else None
    engine = Engine(primary, runner, stuck_timeout_s, on_failover, labels=bundle.manifest.labels)
    return Serving(bundle, sel, engine)


def _load(bundle: Bundle, cand: Candidate) -> Slot | None:
    try:
        return Slot(cand.key, selection.load_candidate(bundle, cand))
    except RuntimesError as exc:
        log.warning("candidate %s does not load: %s", cand.key, exc)
        return None
