"""Camera sources against a real RTSP server on loopback (gst-rtsp-server) and the system GStreamer:
OpenCV/FFmpeg and GStreamer captures, H.264 and H.265, reconnects, stalls, resolution changes, credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.video.camera import Camera, CameraEvent
from agent.video.capture import Frame, SourceOptions, redact
from agent.video.gst import HARDWARE, pipeline_for
from agent.video.pipeline import Rate
from agent.video.sources import open_source
from tests.support.rtsp import RtspServer, encode, gst_available, isolated, stream

SKIP = gst_available()
needs_gst = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")
USER, PASSWORD = "viewer", "s3cret-Pw"


@pytest.fixture(scope="module")
def streams(media: Path) -> dict[str, Path]:
    if SKIP:
        pytest.skip(SKIP)
    small = (media / "video_640x480.mp4", (640, 480), 3.0)
    return {"h264": stream(media, "video_640x480", (640, 480), "h264", 30),
            "h265": stream(media, "video_1920x1080", (1280, 720), "h265", 30),
            # 3 s at 640x480, then 320x240: a new SPS mid-stream, as a camera whose resolution is changed
            "switch": encode(media / "rtsp" / "switch_h264.ts", [small, (small[0], (320, 240), 27.0)], "h264")}


@pytest.fixture
def server(streams: dict[str, Path], tmp_path: Path) -> Iterator[RtspServer]:
    with RtspServer(streams, USER, PASSWORD, log=tmp_path / "rtsp.log") as s:
        yield s


def read_for(cap_source: str, opts: SourceOptions, seconds: float) -> list[Frame]:
    cap = open_source(cap_source, opts)
    assert cap is not None, f"cannot open {redact(cap_source)}"
    frames: list[Frame] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            frame = cap.read()
            if frame is None:
                break
            frames.append(frame)
    finally:
        cap.release()
    return frames


def test_redact_masks_passwords_in_urls_and_pipelines() -> None:
    assert redact("rtsp://admin:p@ss:w0rd@10.0.0.5:554/h264") == "rtsp://admin:***@10.0.0.5:554/h264"
    assert redact("rtspsrc location=rtsp://u:pw@cam/x user-pw=pw2 ! decodebin ! appsink") == \
        "rtspsrc location=rtsp://u:***@cam/x user-pw=*** ! decodebin ! appsink"
    assert redact("rtsp://cam.local/stream") == "rtsp://cam.local/stream"
    assert redact("/data/video.mp4") == "/data/video.mp4"


def test_credentials_leave_the_rtsp_url_as_properties() -> None:
    from agent.video.gst import split_credentials

    assert split_credentials("rtsp://admin:Pw-9:x@y@10.0.0.5:554/live?ch=1") == \
        ("rtsp://10.0.0.5:554/live?ch=1", "admin", "Pw-9:x@y")
    assert split_credentials("rtsp://u%40corp:p%2Fw@cam/x") == ("rtsp://cam/x", "u@corp", "p/w")
    assert split_credentials("rtsp://cam/x") == ("rtsp://cam/x", None, None)


def test_pipeline_for_appends_our_sink_and_the_hardware_converter() -> None:
    user = pipeline_for("videotestsrc ! videoconvert ! appsink name=x sync=false", SourceOptions())
    assert user.startswith("videotestsrc ! videoconvert ! videoconvert ! video/x-raw,format=BGR ! appsink")
    jetson = pipeline_for("rtsp://cam/x", SourceOptions(hw_decoders=("nvv4l2decoder",), jitter_ms=50))
    assert jetson.startswith("rtspsrc name=src latency=50 ! decodebin ! nvvidconv ! video/x-raw,format=BGRx")
    assert "rtsp://cam/x" not in jetson  # the location is set as a property: no quoting of passwords
    assert set(HARDWARE) >= {"nvv4l2decoder", "vah264dec", "vaapih264dec"}


def test_stream_clock_measures_delay_against_the_soonest_frame() -> None:
    from agent.video.capture import StreamClock

    clock = StreamClock()
    assert clock.when(0.0, 100.0) == 100.0
    assert clock.when(1.0, 100.5) == 100.5  # settling (a preroll burst ahead of its stamps): the latest frame
    assert clock.when(2.0, 102.0) == 102.0  # the offset is 100
    assert clock.when(4.0, 104.2) == pytest.approx(104.0, abs=0.01)  # 200 ms later than its stamp says
    assert clock.when(5.0, 104.9) == pytest.approx(104.9)  # sooner: the new offset (99.9)
    assert clock.when(100.0, 1000.0) == 1000.0  # a jump (a restarted stream): the new offset


def test_rate_takes_frames_on_schedule_without_bursting() -> None:
    rate = Rate(5.0)
    assert rate.wait(100.0) == 0.0
    rate.took(100.0)
    assert rate.wait(100.05) == pytest.approx(0.15)
    rate.took(103.0)  # a slow stretch: the next is one interval on, not five frames at once
    assert rate.wait(103.0) == pytest.approx(0.2)
    assert Rate(None).wait(0.0) == 0.0


@needs_gst
@pytest.mark.parametrize("codec", ["h264", "h265"])
@pytest.mark.parametrize("decoder", ["opencv", "gstreamer"])
def test_rtsp_reads_frames_with_time_and_decode_cost(server: RtspServer, codec: str, decoder: str) -> None:
    isolated(reads_frames, server.url(codec), codec, decoder)


def reads_frames(url: str, codec: str, decoder: str) -> None:
    frames = read_for(url, SourceOptions(decoder=decoder), 3.0)  # type: ignore[arg-type]
    assert len(frames) >= 20
    assert frames[-1].image.shape == ((480, 640, 3) if codec == "h264" else (720, 1280, 3))
    now = time.monotonic()
    assert all(0 <= now - f.at < 5 for f in frames)
    assert sum(f.decode_cpu_s for f in frames) > 0


@needs_gst
def test_gstreamer_follows_a_resolution_change(server: RtspServer) -> None:
    """OpenCV scales later frames to the first size; the GStreamer source delivers what the camera sends."""
    isolated(follows_resolution, server.url("switch"))


def follows_resolution(url: str) -> None:
    frames = read_for(url, SourceOptions(decoder="gstreamer"), 6.0)
    sizes = [f.image.shape[:2] for f in frames]
    assert (480, 640) in sizes and sizes[-1] == (240, 320)


@needs_gst
def test_gstreamer_pipeline_string_and_the_preferred_decoder(streams: dict[str, Path]) -> None:
    """A user's pipeline ending in appsink; and the probe's decoder choice (here a software one stands in for
    the hardware decoders this machine lacks) is what decodebin picks."""
    isolated(pipeline_and_preferred, streams)


def pipeline_and_preferred(streams: dict[str, Path]) -> None:
    user = f"filesrc location={streams['h264']} ! matroskademux ! h264parse ! avdec_h264 ! appsink"
    frames = read_for(user, SourceOptions(), 1.0)
    assert frames and frames[0].image.shape == (480, 640, 3)
    cap = open_source(str(streams["h265"]), SourceOptions(decoder="gstreamer", hw_decoders=("libde265dec",)))
    assert cap is not None and cap.decoder == "libde265dec"
    cap.release()
    cap = open_source(str(streams["h265"]), SourceOptions(decoder="gstreamer"))
    assert cap is not None and cap.decoder == "avdec_h265"  # the highest rank, without a preference
    cap.release()
    # A preferred decoder that cannot take the stream (openh264dec: byte-stream only) leaves the choice alone.
    cap = open_source(str(streams["h264"]), SourceOptions(decoder="gstreamer", hw_decoders=("openh264dec",)))
    assert cap is not None and cap.decoder == "avdec_h264"
    cap.release()


@needs_gst
def test_bad_pipeline_is_one_clear_error() -> None:
    isolated(bad_pipeline)


def bad_pipeline() -> None:
    from agent.video.capture import CaptureUnavailable

    with pytest.raises(CaptureUnavailable, match="no element \"nosuchelement\""):
        open_source("nosuchelement ! appsink", SourceOptions())


@needs_gst
@pytest.mark.parametrize("decoder", ["opencv", "gstreamer"])
def test_camera_reconnects_after_the_server_restarts_and_after_a_stall(streams: dict[str, Path],
                                                                        decoder: str) -> None:
    isolated(reconnects, streams, decoder)


def reconnects(streams: dict[str, Path], decoder: str) -> None:
    """The server is started and driven from the child process that reads it."""
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda r: records.append(r.getMessage())  # type: ignore[method-assign]
    logging.getLogger("agent").addHandler(handler)
    with RtspServer(streams, USER, PASSWORD) as server:
        restarts(server, decoder, records)


def restarts(server: RtspServer, decoder: str, records: list[str]) -> None:
    events: list[CameraEvent] = []
    opts = SourceOptions(decoder=decoder, stall_s=2.0)  # type: ignore[arg-type]
    cam = Camera("door", server.url("h264"), options=opts, on_event=events.append).start()
    try:
        assert wait_for(lambda: cam.get(0.5) is not None, 10)
        server.kill()
        assert wait_for(lambda: not cam.stats.connected, 10)
        server.start()
        restarted = time.monotonic()
        assert wait_for(lambda: cam.stats.connected and cam.get(1.0) is not None, 15)
        reconnect_s = time.monotonic() - restarted
        server.stall()
        assert wait_for(lambda: not cam.stats.connected, 10)  # nothing for stall_s: reopened
        server.resume()
        assert wait_for(lambda: cam.stats.connected and cam.get(1.0) is not None, 15)
    finally:
        cam.stop()
    said = [e.message for e in events]
    assert reconnect_s < 5.0, said
    assert sum("lost" in m for m in said) >= 2 and sum("again after" in m for m in said) >= 2, said
    assert all(e.down_s is None or e.down_s > 0 for e in events)
    assert PASSWORD not in " ".join(said + records)


def wait_for(cond: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    pause = threading.Event()
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return True
        pause.wait(0.1)
    return False



@needs_gst
def test_gstreamer_camera_survives_servers_dying_right_after_play(streams: dict[str, Path]) -> None:
    """rtspsrc 1.22 can deadlock its stop when the server dies within a second of PLAY: the camera leaves
    that pipeline behind and reads a new one."""
    isolated(dies_after_play, streams)


def dies_after_play(streams: dict[str, Path]) -> None:
    with RtspServer(streams) as server:
        cam = Camera("gate", server.url("h264"), options=SourceOptions(decoder="gstreamer", stall_s=2.0)).start()
        try:
            for _ in range(4):
                assert wait_for(lambda: cam.stats.connected and cam.get(0.5) is not None, 20)
                server.kill()
                threading.Event().wait(1.0)
                server.start()
        finally:
            cam.stop()
