"""The failure drill: the serving runtime made to fail mid-run, first in-process, then in a real agent
process on the real bundle and runtimes, which must fail over, keep serving and say so."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest

from agent.config import DrillConfig
from agent.inference import drill, selection
from agent.inference.engine import Engine, Slot
from runtimes.bundle import open_bundle
from tests.support import fakebundle
from tests.support.broker import Broker
from tests.support.fakebundle import FAKE_PROBE
from tests.support.mqtt import FAST, Recorder, start_agent


def test_drill_off_leaves_the_engine_alone(tmp_path: Path) -> None:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {}}))
    cand = selection.enumerate_candidates(bundle.manifest, FAKE_PROBE)[0]
    engine = Engine(Slot(cand.key, selection.load_candidate(bundle, cand)), None)
    assert drill.arm(engine, DrillConfig()) is None
    assert not isinstance(engine.active.model.adapter, drill.DrillAdapter)


def test_drill_fails_the_active_runtime_after_n_calls(tmp_path: Path) -> None:
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {}, "onnx-int8": {}}))
    cands = selection.enumerate_candidates(bundle.manifest, FAKE_PROBE)
    engine = Engine(*(Slot(c.key, selection.load_candidate(bundle, c)) for c in cands))
    message = drill.arm(engine, DrillConfig(after_calls=3))
    assert message is not None and cands[0].key in message
    frame = np.zeros((8, 8, 3), np.uint8)
    for _ in range(5):
        engine.infer_frame(frame)
    assert engine.active.key == cands[1].key
    assert "drill: fake made to fail after 3" in engine.failovers[0].reason
    engine.close()


def _status(rec: Recorder, device: str, pred: object = None, timeout: float = 90, since: int = 0) -> dict[str, object]:
    return rec.wait_for(lambda t, d: t == f"edge/{device}/status" and d["state"] == "online"
                        and d.get("runtime") is not None and (pred is None or pred(d)),  # type: ignore[operator]
                        timeout, since)


@pytest.mark.parametrize(("mode", "runner_up"), [("raise", "lazy"), ("hang", "warm")])
def test_agent_process_fails_over_when_its_runtime_breaks_mid_run(
        mode: str, runner_up: str, own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
        tmp_path: Path) -> None:
    """The selected runtime of a running agent starts failing (a runtime error, or a call that never
    returns): the agent switches to its runner-up on another runtime (warm, or loaded then) without
    restarting, reports the failover, keeps answering, and status names the runtime that serves now."""
    device = f"drill-{mode}"
    env = {**FAST, "EDGE_AGENT__DRILL__AFTER_CALLS": "60", "EDGE_AGENT__DRILL__MODE": mode,
           "EDGE_AGENT__THRESHOLDS__STUCK_TIMEOUT_S": "2", "EDGE_AGENT__RUNNER_UP": runner_up}
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", device, env=env)
    try:
        armed = recorder.wait_for(lambda t, d: t == f"edge/{device}/events" and d["kind"] == "drill", 120)
        mark = recorder.mark()  # a fast start served a provisional candidate before: the drill arms the chosen one
        first = _status(recorder, device, lambda d: d["runtime"]["target"] in armed["message"], since=mark)["runtime"]
        assert isinstance(first, dict)
        event = recorder.wait_for(lambda t, d: t == f"edge/{device}/events" and d["kind"] == "failover", 60)
        assert ("drill:" if mode == "raise" else "stuck") in event["data"]["reason"]
        assert (event["data"]["load_s"] is not None) == (runner_up == "lazy")
        now = _status(recorder, device, lambda d: d["runtime"]["runtime"] != first["runtime"], 30, mark)["runtime"]
        assert isinstance(now, dict) and event["data"]["to_key"].startswith(now["target"])
        seen = len(recorder.of(f"{device}/results"))
        recorder.wait_for(lambda t, d: t == f"edge/{device}/telemetry" and d["fps"] > 1
                          and d["runtime"].endswith(now["runtime"]), 30)
        recorder.wait_for(lambda t, _d: t == f"edge/{device}/results"
                          and len(recorder.of(f"{device}/results")) >= seen + 5, 30)
        assert agent.poll() is None
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
        seqs = [d["seq"] for d in recorder.of(f"{device}/telemetry")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"telemetry lost or repeated: {seqs}"
    finally:
        agent.kill()
