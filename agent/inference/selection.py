"""On-device selection: golden check every candidate, benchmark the survivors, pick the fastest,
keep a runner-up on another runtime. Cached under bundle digest + hardware fingerprint."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtimes.bundle import Bundle
from runtimes.errors import RuntimesError
from runtimes.model import LoadedModel, golden_agreement, golden_failure
from runtimes.processing import Array
from runtimes.tasks import Outputs

from ..errors import NoCandidate
from . import benchmark
from .candidates import Candidate, enumerate_candidates
from .probe import Probe

log = logging.getLogger(__name__)
CACHE_VERSION = 1
UNDER_LOAD_DUTY = 0.5  # re-measuring beside the serving model: half the time, so its cameras keep their frames


@dataclass
class Selection:
    seconds: float
    candidates: list[Candidate]
    selected: Candidate
    runner_up: Candidate | None
    noisy: bool = False
    cached: bool = False
    provisional: bool = False  # fast start: a safe candidate serving until this device's selection is done

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 2), "selected": self.selected.as_dict(),
                "runner_up": self.runner_up.as_dict() if self.runner_up else None,
                "candidates": [c.as_dict() for c in self.candidates], "noisy": self.noisy, "cached": self.cached,
                "provisional": self.provisional}


def load_candidate(bundle: Bundle, cand: Candidate) -> LoadedModel:
    art = bundle.manifest.artifact(cand.target)
    m = bundle.manifest
    return LoadedModel.load(m.preprocess, m.postprocess, art, bundle.artifact_files(art), cand.runtime, cand.settings)


def golden_check(bundle: Bundle, cand: Candidate, images: Array, reference: Outputs) -> LoadedModel | None:
    """Load the candidate and check it on the golden vectors; on failure exclude it and return None."""
    try:
        model = load_candidate(bundle, cand)
    except RuntimesError as exc:
        cand.exclude(f"load: {exc}")
        return None
    try:
        agreement = golden_agreement(model, images, reference)
    except RuntimesError as exc:
        model.close()
        cand.exclude(f"golden run: {exc}")
        return None
    failure = golden_failure(agreement, bundle.manifest.tolerance(cand.precision))
    if failure:
        model.close()
        cand.exclude(failure)
        return None
    cand.executes_on = model.adapter.executing()
    return model


def _steps(models: dict[str, LoadedModel], images: Array, source: Path | None) -> dict[str, Any]:
    if source is not None:
        from ..video.pipeline_bench import pipeline_steps

        return pipeline_steps(models, source)
    return {k: _infer_step(m, images[:1]) for k, m in models.items()}


def _infer_step(model: LoadedModel, image: Array) -> Any:
    # What the agent pays per frame at model size: input conversion, inference and dequantisation, so a
    # float-input artifact carries its normalisation cost against a raw-pixel uint8 one.
    return lambda: model.infer_images(image)


def select(bundle: Bundle, probe: Probe, budget_s: float = 8.0, source: Path | None = None,
           runtimes: list[str] | None = None, under_load: bool = False) -> Selection:
    """`under_load`: measure the device as it is now (another process holding cores): fewer threads are
    worth a candidate, and a noisy run is the point rather than a reason to measure again."""
    started = time.monotonic()
    cands = enumerate_candidates(bundle.manifest, probe, pipeline=source is not None or under_load,
                                 runtimes=runtimes)
    images, reference = bundle.golden()
    models = {c.key: m for c in cands if (m := golden_check(bundle, c, images, reference)) is not None}
    try:
        if not models:
            raise NoCandidate([f"{c.key}: {c.reason}" for c in cands] or ["no artifact matches this device"])
        run = _measure(cands, models, images, source, budget_s, under_load)
    finally:
        for m in models.values():
            m.close()
    ranked = sorted((c for c in cands if c.status == "ok"), key=lambda c: c.median_ms or float("inf"))
    cands.sort(key=lambda c: (c.status != "ok", c.median_ms or float("inf")))
    return Selection(time.monotonic() - started, cands, ranked[0], runner_up(ranked), run.noisy)


def _measure(cands: list[Candidate], models: dict[str, LoadedModel], images: Array, source: Path | None,
             budget_s: float, under_load: bool = False) -> benchmark.Run:
    samples, run = benchmark.interleaved(_steps(models, images, source), budget_s,
                                         duty=UNDER_LOAD_DUTY if under_load else 1.0)
    if run.noisy and not under_load:
        log.warning("benchmark noisy (other processes used %.2f cores): measuring again", run.other_cpu)
        samples, run = benchmark.interleaved(_steps(models, images, source), budget_s)
    for c in cands:
        if c.key in samples:
            c.median_ms, c.p90_ms = benchmark.median_p90(samples[c.key])
    return run


def runner_up(ranked: list[Candidate]) -> Candidate | None:
    """The fastest survivor on another runtime (a broken runtime takes its own candidates down with it),
    else the next fastest."""
    if len(ranked) < 2:
        return None
    other = [c for c in ranked[1:] if c.runtime != ranked[0].runtime]
    return other[0] if other else ranked[1]


def cache_path(state_dir: Path, bundle: Bundle, probe: Probe, source: Path | None) -> Path:
    mode = "pipeline" if source is not None else "infer"
    return state_dir / "selection" / f"{bundle.digest[:16]}-{probe.fingerprint()}-{mode}.json"


def save(path: Path, sel: Selection) -> None:
    """Cache a decision; a disk that takes no writes costs a re-selection at the next start, nothing more."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"cache_version": CACHE_VERSION, **sel.as_dict()}))
        tmp.replace(path)
    except OSError as exc:
        log.warning("selection cache %s: cannot write (%s); the next start selects again", path, exc.strerror)


def load_cached(path: Path) -> Selection | None:
    """A cached decision, or None when there is none or it is damaged (then this device selects again)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("selection cache %s: unreadable (%s); selecting again", path, exc)
        return None
    try:
        return from_dict(doc, cached=True)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        log.warning("selection cache %s: damaged (%s: %s); selecting again", path, type(exc).__name__, exc)
        return None


def from_dict(doc: Any, cached: bool = False) -> Selection | None:
    """A decision as `select --json` prints it; None for another cache version."""
    if doc.get("cache_version", CACHE_VERSION) != CACHE_VERSION:
        return None
    cands = [_candidate(c) for c in doc["candidates"]]
    by_key = {c.key: c for c in cands}
    sel, ru = _candidate(doc["selected"]), doc.get("runner_up")
    return Selection(float(doc["seconds"]), cands, by_key.get(sel.key, sel),
                     by_key.get(_candidate(ru).key) if ru else None, bool(doc.get("noisy", False)), cached=cached)


def _candidate(d: dict[str, Any]) -> Candidate:
    return Candidate(d["target"], d["runtime"], d["device"], d["settings"], d["precision"], d["status"],
                     d["reason"], d["median_ms"], d["p90_ms"], d.get("executes_on"))


def select_cached(bundle: Bundle, probe: Probe, state_dir: Path, budget_s: float = 8.0,
                  source: Path | None = None, force: bool = False, under_load: bool = False) -> Selection:
    path = cache_path(state_dir, bundle, probe, source)
    if not force and (hit := load_cached(path)) is not None:
        return hit
    sel = select(bundle, probe, budget_s, source, under_load=under_load)
    save(path, sel)
    return sel
