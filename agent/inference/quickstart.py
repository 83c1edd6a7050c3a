"""Fast start: a device that has never measured a bundle serves it within seconds on a safe candidate while
the full selection runs in the background, then switches between two frames. Safe means the most tested
path: FP32 on the CPU, on the runtimes in the registry's order (ONNX Runtime first), golden-checked here."""

from __future__ import annotations

import logging
import time

from runtimes.bundle import Bundle
from runtimes.model import LoadedModel
from runtimes.registry import ADAPTERS

from .candidates import Candidate, enumerate_candidates
from .probe import Probe
from .selection import Selection, golden_check

log = logging.getLogger(__name__)
MAX_TRIES = 3  # past three failing candidates the full selection (in its own process) is the better judge
_ORDER = list(ADAPTERS)


def _safety(cand: Candidate) -> tuple[bool, bool, int]:
    rank = _ORDER.index(cand.runtime) if cand.runtime in _ORDER else len(_ORDER)
    return cand.precision != "fp32", cand.device.lower() != "cpu", rank


def provisional(bundle: Bundle, probe: Probe) -> tuple[Selection, LoadedModel] | None:
    """The safest candidate that passes the golden check, loaded; None when none of the first few does."""
    started = time.monotonic()
    cands = sorted(enumerate_candidates(bundle.manifest, probe), key=_safety)[:MAX_TRIES]
    images, reference = bundle.golden()
    for cand in cands:
        model = golden_check(bundle, cand, images, reference)
        if model is not None:
            return Selection(time.monotonic() - started, [cand], cand, None, provisional=True), model
        log.warning("fast start: %s fails its golden check (%s)", cand.key, cand.reason)
    return None
