"""The agent on real RTSP cameras (gst-rtsp-server on loopback, with a password): an H.264 camera through
OpenCV at a set rate and an H.265 one through GStreamer; glass-to-result, decode cost and capacity in
telemetry, status and `edgectl status --json`; the server killed and restarted; the password nowhere."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.rtsp import RtspServer, gst_available, stream

SKIP = gst_available()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]
PASSWORD = "Pw-9:x@y"  # ':' and '@' as people type them into camera URLs


def config(path: Path, server: RtspServer) -> Path:
    path.write_text(f"""
[[cameras]]
id = "door"
source = "{server.url('h264')}"
infer_fps = 5
decoder = "opencv"

[[cameras]]
id = "yard"
source = "{server.url('h265')}"
decoder = "gstreamer"
""")
    return path


def test_agent_on_rtsp_cameras(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    streams = {"h264": stream(media, "video_640x480", (640, 480), "h264", 120),
               "h265": stream(media, "video_1920x1080", (1280, 720), "h265", 120)}
    env = {**FAST, "EDGE_AGENT__THRESHOLDS__NO_FRAMES_S": "2"}
    with RtspServer(streams, "viewer", PASSWORD, log=tmp_path / "rtsp.log") as server:
        cfg = config(tmp_path / "agent.toml", server)
        proc = start_agent(own_broker, bundle, media, tmp_path / "state", "gate", "--config", str(cfg), env=env,
                           source=None)
        try:
            telemetry = recorder.wait_for(lambda t, d: t == "edge/gate/telemetry" and d.get("capacity") is not None
                                          and all(c["glass_p95_ms"] for c in d["cameras"].values()), 120)
            check_telemetry(telemetry)
            check_status(own_broker, monkeypatch, tmp_path)
            restart(server, recorder)
        finally:
            proc.terminate()
            proc.wait(30)
    said = json.dumps([d for _t, d, _r in recorder.messages]) + (tmp_path / "agent-gate.log").read_text()
    assert PASSWORD not in said and "viewer:***@" in said


def check_telemetry(t: dict[str, object]) -> None:
    door, yard = t["cameras"]["door"], t["cameras"]["yard"]  # type: ignore[index]
    assert door["decoder"] == "ffmpeg" and yard["decoder"] == "avdec_h265"
    assert (door["width"], door["height"], yard["width"], yard["height"]) == (640, 480, 1280, 720)
    assert door["in_fps"] >= 10 and door["infer_fps"] == 5 and door["fps"] <= 5.5  # the preroll bursts above 15
    assert door["skipped"] > 0  # decoded, not taken: the rate holds
    assert yard["decode_cpu_pct"] > door["decode_cpu_pct"] > 0
    assert 0 < door["glass_p50_ms"] <= door["glass_p95_ms"] < 2000
    cap = t["capacity"]
    assert cap["camera"] == "yard" and cap["cameras"] >= 1 and cap["stream"].startswith("1280x720@")  # type: ignore[index]


def check_status(broker: Broker, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path / "home"))
    out = CliRunner().invoke(app, ["status", "--broker", broker.url, "--json"])
    row = json.loads(out.stdout)[0]
    assert row["capacity"]["summary"].startswith("about ")
    assert row["cameras"]["door"]["connected"] and row["cameras"]["yard"]["glass_p95_ms"] > 0


def restart(server: RtspServer, recorder: Recorder) -> None:
    mark = recorder.mark()
    server.kill()
    recorder.wait_for(lambda t, d: t == "edge/gate/events" and "lost" in d["message"], 20, since=mark)
    recorder.wait_for(lambda t, d: t == "edge/gate/status" and d["state"] == "degraded", 20, since=mark)
    server.start()
    restarted = time.monotonic()
    back = recorder.wait_for(lambda t, d: t == "edge/gate/events" and "again after" in d["message"], 20,
                             since=mark)
    assert back["data"]["down_s"] > 0
    recorder.wait_for(lambda t, d: t == "edge/gate/status" and d["state"] == "online", 20, since=mark)
    assert time.monotonic() - restarted < 10
