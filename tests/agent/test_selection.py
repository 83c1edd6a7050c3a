"""Selection logic on the fake runtime, then on the real runtimes and the real bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agent.errors import NoCandidate
from agent.inference import selection
from agent.inference.engine import Engine, Slot
from agent.inference.probe import Probe, probe
from runtimes.bundle import Bundle, open_bundle
from runtimes.errors import InferenceFailed, LoadFailed
from tests.support import fakebundle
from tests.support.fakebundle import FAKE_PROBE


def test_fastest_accurate_candidate_wins_and_runner_up_is_kept(tmp_path: Path) -> None:
    root = fakebundle.make(tmp_path / "b", {"onnx-fp32": {"latency_ms": 3}, "onnx-int8": {"latency_ms": 1},
                                            "openvino-fp16": {"noise": 50.0}})
    sel = selection.select(open_bundle(root), FAKE_PROBE, budget_s=0.3)
    assert sel.selected.target == "onnx-int8"
    assert sel.runner_up is not None and sel.runner_up.target == "onnx-fp32"
    broken = next(c for c in sel.candidates if c.target == "openvino-fp16")
    assert broken.status == "excluded" and "golden" in (broken.reason or "")


def test_every_candidate_failing_lists_every_cause(tmp_path: Path) -> None:
    root = fakebundle.make(tmp_path / "b", {"onnx-fp32": {"noise": 50.0}, "onnx-int8": {"bogus_option": 1}})
    with pytest.raises(NoCandidate) as info:
        selection.select(open_bundle(root), FAKE_PROBE, budget_s=0.1)
    assert len(info.value.causes) == 2
    assert any("bogus_option" in c for c in info.value.causes)


def test_cache_hit_and_invalidation(tmp_path: Path) -> None:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {}, "onnx-int8": {}}))
    first = selection.select_cached(bundle, FAKE_PROBE, tmp_path / "state", budget_s=0.1)
    again = selection.select_cached(bundle, FAKE_PROBE, tmp_path / "state", budget_s=0.1)
    assert not first.cached and again.cached and again.selected.key == first.selected.key
    changed = Probe(**{**FAKE_PROBE.as_dict(), "runtimes": {"fake": {"version": "2.0", "devices": ["cpu"]}}})
    assert not selection.select_cached(bundle, changed, tmp_path / "state", budget_s=0.1).cached
    assert not selection.select_cached(bundle, FAKE_PROBE, tmp_path / "state", budget_s=0.1, force=True).cached


def _engine(tmp_path: Path, primary: dict[str, object], timeout: float = 5.0) -> tuple[Engine, list[object]]:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": primary, "onnx-int8": {}}))
    cands = selection.enumerate_candidates(bundle.manifest, FAKE_PROBE)
    slots = [Slot(c.key, selection.load_candidate(bundle, c)) for c in cands]
    events: list[object] = []
    return Engine(slots[0], slots[1], stuck_timeout_s=timeout, on_failover=events.append), events


def test_failover_when_the_runtime_raises(tmp_path: Path) -> None:
    engine, events = _engine(tmp_path, {"fail_after": 2})
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(5):
        engine.infer_frame(frame)
    assert engine.active.key.startswith("onnx-int8") and len(events) == 1
    assert "failing after 2" in engine.failovers[0].reason
    engine.close()


def test_failover_when_inference_is_stuck(tmp_path: Path) -> None:
    engine, events = _engine(tmp_path, {"hang_after": 1, "hang_s": 3.0}, timeout=0.3)
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(3):
        engine.infer_frame(frame)
    assert len(events) == 1 and "stuck" in engine.failovers[0].reason
    engine.close()


def _lazy(tmp_path: Path, loader_fails: bool = False) -> tuple[Engine, list[str]]:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {"fail_after": 2}, "onnx-int8": {}}))
    first, second = selection.enumerate_candidates(bundle.manifest, FAKE_PROBE)
    loads: list[str] = []

    def load() -> Slot:
        loads.append(second.key)
        if loader_fails:
            raise LoadFailed("fake: cannot read model.json")
        return Slot(second.key, selection.load_candidate(bundle, second))

    return Engine(Slot(first.key, selection.load_candidate(bundle, first)), (second.key, load)), loads


def test_lazy_runner_up_is_loaded_only_on_failover(tmp_path: Path) -> None:
    engine, loads = _lazy(tmp_path)
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(2):
        engine.infer_frame(frame)
    assert not loads
    for _ in range(3):
        engine.infer_frame(frame)
    assert loads == [engine.active.key] and engine.active.key.startswith("onnx-int8")
    assert engine.failovers[0].load_s is not None
    engine.close()


def test_lazy_runner_up_that_does_not_load_names_both_causes(tmp_path: Path) -> None:
    engine, _ = _lazy(tmp_path, loader_fails=True)
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(2):
        engine.infer_frame(frame)
    with pytest.raises(InferenceFailed, match=r"failing after 2.*did not load: fake: cannot read"):
        engine.infer_frame(frame)
    with pytest.raises(InferenceFailed, match="no runner-up left"):
        engine.infer_frame(frame)


def test_no_runner_up_left_is_an_error(tmp_path: Path) -> None:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {"fail_after": 0}}))
    cand = selection.enumerate_candidates(bundle.manifest, FAKE_PROBE)[0]
    engine = Engine(Slot(cand.key, selection.load_candidate(bundle, cand)), None)
    with pytest.raises(InferenceFailed, match="no runner-up"):
        engine.infer_frame(np.zeros((8, 8, 3), np.uint8))


def test_real_selection_on_this_machine(bundle: Path) -> None:
    sel = selection.select(open_bundle(bundle), probe(), budget_s=2.0)
    ok = [c for c in sel.candidates if c.status == "ok"]
    assert len(ok) >= 5 and sel.selected.median_ms is not None
    assert sel.selected.median_ms <= min(c.median_ms or 1e9 for c in ok)
    assert sel.runner_up is not None and sel.runner_up.runtime != sel.selected.runtime
    assert {c.runtime for c in ok} >= {"onnxruntime", "openvino"}


def test_corrupted_artifact_fails_its_golden_check(bundle: Path, tmp_path: Path) -> None:
    import shutil

    import onnx
    from onnx import numpy_helper

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    path = copy / "onnx-fp32" / "model.onnx"
    model = onnx.load(str(path))
    biggest = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(biggest)
    biggest.CopyFrom(numpy_helper.from_array(-weights[::-1].copy(), biggest.name))  # a plausible but wrong model
    onnx.save(model, str(path))
    b = _rehash(copy)
    sel = selection.select(b, probe(), budget_s=0.5, runtimes=["onnxruntime"])
    fp32 = [c for c in sel.candidates if c.target == "onnx-fp32"]
    assert fp32 and all(c.status == "excluded" and "golden" in (c.reason or "") for c in fp32)
    assert sel.selected.target != "onnx-fp32"


def _rehash(root: Path) -> Bundle:
    """The artifact was corrupted at build time (hashes match): only the golden check can catch it."""
    import json

    from runtimes.bundle import file_entry

    doc = json.loads((root / "manifest.json").read_text())
    doc["files"] = [file_entry(root, f["path"]).model_dump() for f in doc["files"]]
    (root / "manifest.json").write_text(json.dumps(doc))
    (root / "manifest.sig").unlink()
    return open_bundle(root)
