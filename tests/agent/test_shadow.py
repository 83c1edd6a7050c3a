"""The previous model beside the new one during the soak (the shadow), on a real agent: a push of the same
model requantised commits with a high agreement reported; a push of a different model with `--min-agreement`
is rolled back with the measured agreement in the reason, and the previous model serves again at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtimes.bundle import open_bundle
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.updates import push, serving

pytestmark = pytest.mark.slow
SOAK = {**FAST, "EDGE_AGENT__THRESHOLDS__SOAK_S": "4"}


def test_agreement_is_reported_and_gates_the_update(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                   bundle_v2: Path, orientation_bundle: Path, media: Path,
                                                   tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "s1", env=SOAK)
    try:
        serving(recorder, "s1", 1)
        same = push(own_broker, bundle_v2, "s1")[0]
        assert same["result"] == "committed", same
        assert same["agreement"] is not None and float(same["agreement"]) >= 0.8, same  # type: ignore[arg-type]
        other = push(own_broker, orientation_bundle, "s1", "--min-agreement", "0.95", "--force")[0]
        assert other["result"] == "rolled_back", other
        agreement = float(other["agreement"])  # type: ignore[arg-type]
        assert agreement < 0.5 and f"{agreement:.3f} < 0.95" in str(other["reason"]), other
        name = open_bundle(bundle_v2, allow_unsigned=True).manifest.name
        status = recorder.wait_for(lambda t, d: t == "edge/s1/status" and d.get("update_phase") == "rolled_back"
                                   and d["model"]["name"] == name and d["model"]["version"] == 2, 30)
        assert status["shadow"]["agreement"] == pytest.approx(agreement, abs=1e-3) and status["shadow"]["frames"]
    finally:
        agent.kill()
