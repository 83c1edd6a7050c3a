"""Two cameras sharing the model: one thread, batched when measured faster; Prometheus on localhost."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent


def test_two_cameras_share_the_model_with_a_measured_batching_decision(
        own_broker: Broker, recorder: Recorder, bundle: Path, media: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {**FAST, "EDGE_AGENT__METRICS_PORT": str(port)}
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "mc1", "--source",
                       str(media / "video_1920x1080.mp4"), env=env)
    try:
        decision = recorder.wait_for(lambda t, d: t == "edge/mc1/events" and d["kind"] == "batching", 60)
        assert decision["data"]["cameras"] == ["cam0", "cam1"]
        gain = decision["data"]["gain"]
        assert decision["data"]["batch"] == (gain is not None and gain >= 1.10), decision
        tele = recorder.wait_for(lambda t, d: t == "edge/mc1/telemetry" and len(d["cameras"]) == 2
                                 and all(c["fps"] > 0.5 for c in d["cameras"].values()), 30)
        assert tele["fps"] > 1
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'edge_agent_frames_total{camera="cam1"}' in text
        assert "edge_agent_serving_info{" in text and 'model="efficientnet-lite0"' in text
    finally:
        proc.terminate()
        proc.wait(30)
