"""Opening a camera source and reading timed frames from it.

Two backends: OpenCV's FFmpeg (files, USB cameras, rtsp://, http://; the default where it is enough) and
GStreamer directly (agent/video/gst.py: a pipeline string, or an RTSP camera that a hardware decoder the
probe found should decode). Each frame carries when it left the camera (the stream's own timestamp where
the backend has one, else when it was received) and the decode CPU it cost, measured in the thread that
decoded it: decoders run one thread per camera by default so that figure is the whole cost.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from runtimes.processing import Array

from ..errors import AgentError

Decoder = Literal["auto", "opencv", "gstreamer"]
NETWORK = ("rtsp://", "rtsps://", "http://", "https://")
# user:password@ in any URL, and rtspsrc's user-pw property in a pipeline string.
# The password runs to the last '@' before the host (unencoded '@' and ':' in passwords are common).
_SECRETS = (re.compile(r"(?P<keep>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^\s/]*(?P<end>@)"),
            re.compile(r"(?P<keep>user-pw\s*=\s*)(\"[^\"]*\"|'[^']*'|\S+)(?P<end>)"))


class CaptureUnavailable(AgentError):
    """The source needs a backend this device lacks (GStreamer's Python bindings, an element)."""


@dataclass(frozen=True)
class Frame:
    image: Array
    at: float  # time.monotonic() when it left the camera, or when it was received
    decode_cpu_s: float = 0.0  # the decoding thread's CPU time since the previous frame


@dataclass(frozen=True)
class SourceOptions:
    decoder: Decoder = "auto"
    decode_threads: int = 1  # 0: the decoder's own choice (its threads then escape the CPU figure)
    stall_s: float = 5.0  # a live source that delivers nothing this long is reopened
    jitter_ms: int = 200  # RTSP jitter buffer (GStreamer): a frame waits this long for late packets
    hw_decoders: tuple[str, ...] = ()  # what the probe found, best first


class Capture(Protocol):
    decoder: str  # which decoder serves it ("ffmpeg", "avdec_h264", "nvv4l2decoder"…)

    def read(self) -> Frame | None:
        """The next frame; None when the source ended, failed or stalled past `stall_s`."""

    def fps(self) -> float:
        """The source's nominal frame rate; 0 when it does not say."""

    def release(self) -> None: ...


def redact(source: str) -> str:
    """The source with any password masked: for logs, events and status."""
    for pattern in _SECRETS:
        source = pattern.sub(lambda m: f"{m.group('keep')}***{m.group('end')}", source)
    return source


def is_file(source: str) -> bool:
    return not source.isdigit() and "!" not in source and "://" not in source and not source.startswith("/dev/")


def is_live(source: str) -> bool:
    return not is_file(source)


class StreamClock:
    """Maps a live stream's timestamps (seconds since it started) to the monotonic clock. The frame that
    arrived soonest after its timestamp sets the offset; the offset may creep up by DRIFT per second, so a
    camera clock slower than ours does not read as a latency that grows by the hour."""

    DRIFT = 0.001  # 1 ms per second: above any crystal's drift, far below a delay worth seeing
    # The first seconds follow the latest frame: a restreaming server sends its preroll in one burst, ahead
    # of its timestamps, which would set an offset that no frame of the live stream after it can reach.
    SETTLE_S = 3.0

    def __init__(self) -> None:
        self._offset: float | None = None
        self._at = 0.0
        self._since: float | None = None

    def when(self, pts: float, now: float) -> float:
        offset = now - pts
        if self._since is None:
            self._since = now
        settling = now - self._since < self.SETTLE_S
        if self._offset is None or settling or offset < self._offset or offset - self._offset > 10.0:
            self._offset = offset
        else:
            self._offset = min(offset, self._offset + self.DRIFT * (now - self._at))
        self._at = now
        return pts + self._offset


class OpenCvCapture:
    decoder = "ffmpeg"

    def __init__(self, cap: Any, live: bool) -> None:
        import cv2

        self._cap, self._live = cap, live
        self._clock = StreamClock()
        self._pos_msec = cv2.CAP_PROP_POS_MSEC  # read per frame: resolved once

    @classmethod
    def open(cls, source: str, opts: SourceOptions) -> OpenCvCapture | None:
        import cv2

        params = [cv2.CAP_PROP_N_THREADS, opts.decode_threads] if opts.decode_threads else []
        if source.startswith(NETWORK):
            stall_ms = int(opts.stall_s * 1000)
            params += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, max(stall_ms, 5000), cv2.CAP_PROP_READ_TIMEOUT_MSEC, stall_ms]
        if "!" in source:
            raise CaptureUnavailable("a GStreamer pipeline needs decoder = \"gstreamer\" or \"auto\"")
        api = cv2.CAP_FFMPEG if source.startswith(NETWORK) else cv2.CAP_ANY
        cap = cv2.VideoCapture(int(source) if source.isdigit() else source, api, params)
        if not cap.isOpened():
            cap.release()
            return None
        return cls(cap, is_live(source))

    def read(self) -> Frame | None:
        cpu = time.thread_time()
        ok, image = self._cap.read()
        if not ok:
            return None
        return Frame(image, self._when(time.monotonic()), time.thread_time() - cpu)

    def _when(self, now: float) -> float:
        """The frame's time from the stream's own timestamps, for a live source that has them; else now."""
        if not self._live:
            return now
        pts = float(self._cap.get(self._pos_msec) or 0.0) / 1000
        return self._clock.when(pts, now) if pts > 0 else now

    def fps(self) -> float:
        import cv2

        return float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)

    def release(self) -> None:
        self._cap.release()
