"""A real `edge-agent run` process, a real mosquitto, the real bundle and the demo video."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.support.broker import Broker
from tests.support.mqtt import Recorder, start_agent


def test_agent_serves_and_reports(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                                  tmp_path: Path) -> None:
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "dev1")
    try:
        status = recorder.wait_for(lambda t, d: t == "edge/dev1/status" and d.get("model") is not None
                                   and d["state"] == "online", 60)
        assert status["model"]["name"] == "efficientnet-lite0"
        assert status["runtime"]["runtime"] in ("onnxruntime", "openvino", "tflite")
        result = recorder.wait_for(lambda t, _d: t == "edge/dev1/results", 30)
        assert len(result["top"]) == 5
        recorder.wait_for(lambda t, d: t == "edge/dev1/telemetry" and d["fps"] > 1, 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        offline = recorder.wait_for(lambda t, d: t == "edge/dev1/status" and d["state"] == "offline", 90)
        assert offline["device"] == "dev1"
    finally:
        proc.kill()
    seqs = [d["seq"] for d in recorder.of("/telemetry")]
    assert seqs == sorted(seqs) and seqs[0] == 1


def test_tampered_bundle_is_refused_and_the_agent_stays_up(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                           media: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "labels-extra.txt").write_text("x")  # harmless extra file
    manifest = (copy / "manifest.json").read_text().replace('"version": 1', '"version": 2')
    (copy / "manifest.json").write_text(manifest)
    proc = start_agent(own_broker, copy, media, tmp_path / "state", "dev2")
    try:
        event = recorder.wait_for(lambda t, d: t == "edge/dev2/events" and d["kind"] == "error", 30)
        assert "manifest.sig" in event["message"]
        recorder.wait_for(lambda t, d: t == "edge/dev2/status" and d["state"] == "degraded", 10)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)


def test_clean_stop_publishes_offline(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                                      tmp_path: Path) -> None:
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "dev3")
    try:
        recorder.wait_for(lambda t, d: t == "edge/dev3/status" and d.get("model") is not None, 60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        recorder.wait_for(lambda t, d: t == "edge/dev3/status" and d["state"] == "offline", 10)
    finally:
        proc.kill()
    assert os.path.exists(tmp_path / "state" / "outbox.db")


def test_remote_commands(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from edgectl.app import app

    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "dev4")
    try:
        recorder.wait_for(lambda t, d: t == "edge/dev4/status" and d["state"] == "online", 60)
        runner = CliRunner()
        config = runner.invoke(app, ["cmd", "dev4", "config", "--broker", own_broker.url])
        assert config.exit_code == 0, config.output
        assert json.loads(config.stdout)["result"]["device_id"] == "dev4"
        logs = runner.invoke(app, ["cmd", "dev4", "logs", "--broker", own_broker.url, "--lines", "5"])
        assert json.loads(logs.stdout)["ok"] and len(json.loads(logs.stdout)["result"]) <= 5
        unknown = runner.invoke(app, ["cmd", "dev4", "selfdestruct", "--broker", own_broker.url])
        assert unknown.exit_code == 1 and "unknown command" in unknown.stdout
        recorder.wait_for(lambda t, d: t == "edge/dev4/events" and d["kind"] == "rejected", 10)
    finally:
        proc.kill()


def test_camera_that_vanishes_and_returns(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                                          tmp_path: Path) -> None:
    import shutil

    video = tmp_path / "cam" / "video_640x480.mp4"
    video.parent.mkdir()
    shutil.copy(media / "video_640x480.mp4", video)
    env = {"EDGE_AGENT__THRESHOLDS__NO_FRAMES_S": "3"}
    proc = start_agent(own_broker, bundle, video.parent, tmp_path / "state", "dev5", env=env)
    try:
        recorder.wait_for(lambda t, d: t == "edge/dev5/status" and d["state"] == "online", 60)
        hidden = video.with_suffix(".gone")
        video.rename(hidden)  # the camera goes away; the open handle plays to its end, then reopening fails
        event = recorder.wait_for(lambda t, d: t == "edge/dev5/events" and d["kind"] == "camera", 30)
        assert "no frames" in event["message"]
        recorder.wait_for(lambda t, d: t == "edge/dev5/status" and d["state"] == "degraded", 10)
        hidden.rename(video)  # back: the capture thread reconnects with backoff
        recorder.wait_for(lambda t, d: t == "edge/dev5/status" and d["state"] == "online"
                          and d["metrics"].get("fps", 0) > 1, 60)
        assert proc.poll() is None
    finally:
        proc.kill()
