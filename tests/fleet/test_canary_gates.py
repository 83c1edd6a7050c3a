"""Model-aware rollouts on real agents: the soak measures the new model's p95 and fps against the previous
model's on the same cameras; a canary that breaches `--max-p95-ratio` rolls itself back to the warm previous
model with both numbers in the reason, and the rest of the fleet is not touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.updates import serving

pytestmark = pytest.mark.slow
SOAK = {**FAST, "EDGE_AGENT__THRESHOLDS__SOAK_S": "5"}


def test_a_canary_that_regresses_p95_halts_the_rollout(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                       bundle_v2: Path, media: Path, tmp_path: Path) -> None:
    agents = [start_agent(own_broker, bundle, media, tmp_path / f"state-{d}", d, env=SOAK) for d in ("k1", "k2")]
    try:
        for device in ("k1", "k2"):
            serving(recorder, device, 1, timeout=120)
            # The gate compares with the engine the device chose, not the safe one a fast start served first.
            chosen = recorder.wait_for(lambda t, d, dev=device: t == f"edge/{dev}/events" and d["kind"] == "selection"
                                       and not d["data"]["provisional"], 120)
            after = float(chosen["ts"]) + 3
            recorder.wait_for(lambda t, d, dev=device, after=after: t == f"edge/{dev}/telemetry" and d["ts"] > after,
                              30)
        # No model can be 3x faster than the one it replaces on the same cameras: the gate must trip.
        out = CliRunner().invoke(app, ["push", str(bundle_v2), "--device", "k1", "--device", "k2", "--broker",
                                       own_broker.url, "--canary", "1", "--max-p95-ratio", "0.33", "--timeout",
                                       "180", "--json"])
        assert out.exit_code == 1, out.output
        canary, rest = json.loads(out.stdout)
        assert canary["device"] == "k1" and canary["result"] == "rolled_back", canary
        assert "--max-p95-ratio 0.33" in canary["reason"] and canary["p95_ms"] and canary["previous_p95_ms"], canary
        assert canary["p95_ms"] / canary["previous_p95_ms"] > 0.33 and canary["fps"] > 0, canary
        assert rest["device"] == "k2" and rest["result"] == "skipped", rest
        assert "halted" in rest["reason"] and "k1: rolled_back" in rest["reason"], rest
        serving(recorder, "k1", 1, since=recorder.mark(), timeout=30)  # the previous model serves again
    finally:
        for agent in agents:
            agent.kill()
