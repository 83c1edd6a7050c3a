"""The agent serving the real face detector on a video of real faces: boxes on results, JPEG snapshots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent


def test_agent_detects_faces_and_sends_snapshots(own_broker: Broker, recorder: Recorder, face_bundle: Path,
                                                 media: Path, tmp_path: Path) -> None:
    env = {**FAST, "EDGE_AGENT__SNAPSHOT__ENABLED": "true", "EDGE_AGENT__SNAPSHOT__MIN_INTERVAL_S": "1",
           "EDGE_AGENT__SNAPSHOT__LABELS": '["face"]'}
    proc = start_agent(own_broker, face_bundle, media, tmp_path / "state", "cam-dev", env=env,
                       source="video_faces_640x480.mp4")
    try:
        status = recorder.wait_for(lambda t, d: t == "edge/cam-dev/status" and d["state"] == "online"
                                   and d.get("model") is not None, 60)
        assert status["model"]["name"] == "blazeface-short"
        result = recorder.wait_for(lambda t, d: t == "edge/cam-dev/results" and bool(d["detections"]), 30)
        box = result["detections"][0]
        assert box["label"] == "face" and box["score"] >= 0.5
        _x1, y1, _x2, y2 = box["box"]
        # The face in the video is 200x200 at y 140-340, drifting right.
        assert 100 < y2 - y1 < 300 and 140 < (y1 + y2) / 2 < 340
        snap = recorder.wait_for(lambda t, _d: t == "edge/cam-dev/snapshots/cam0", 20)
        image = cv2.imdecode(np.frombuffer(snap["_raw"], np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (480, 640, 3)
    finally:
        proc.terminate()
        proc.wait(30)
