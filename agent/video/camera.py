"""Camera sources with a capture thread that keeps only the newest frame and counts skipped ones.

Sources: a USB index or /dev/videoN, rtsp://…, a GStreamer pipeline (contains '!'), or a file (looped or
once; at its own frame rate like a camera, or as fast as the consumer takes frames). Every frame the
camera sends is decoded (a decoder cannot skip frames it references); the pipeline takes the newest when it
is ready. Reconnects with a backoff capped low for live sources: a camera back on the network should be
read again within seconds, and a refused connection costs nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .capture import Capture, CaptureUnavailable, Frame, SourceOptions, is_file, redact
from .sources import open_source

log = logging.getLogger(__name__)
LIVE_BACKOFF_MAX_S = 2.0
FILE_BACKOFF_MAX_S = 30.0


@dataclass
class CameraStats:
    frames: int = 0
    skipped: int = 0
    reconnects: int = 0
    connected: bool = False
    last_frame_at: float = 0.0
    decode_cpu_s: float = 0.0  # every frame decoded, taken or skipped
    decoder: str = ""
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class CameraEvent:
    camera: str
    message: str
    down_s: float | None = None  # on a reconnect: how long it delivered nothing


class Camera:
    def __init__(self, cam_id: str, source: str, loop: bool = True, realtime: bool = True,
                 options: SourceOptions | None = None,
                 on_event: Callable[[CameraEvent], None] = lambda _e: None) -> None:
        self.id, self.source, self.loop = cam_id, source, loop
        self.shown = redact(source)  # what logs, events and status may say
        self.options = options or SourceOptions()
        self.file = is_file(source)
        # A file read "as fast as taken" is prefetched one frame ahead instead of decoded and thrown away.
        self.prefetch = self.file and not realtime
        self.stats = CameraStats()
        self._on_event = on_event
        self._frame: Frame | None = None
        self._lost_at: float | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{cam_id}", daemon=True)
        self.finished = threading.Event()  # a file played once has ended
        self.arrivals: list[threading.Event] = []  # set on every frame: one thread serving many cameras waits on it

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def get(self, timeout: float) -> Frame | None:
        """The newest frame, waiting up to timeout; None when none arrived."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
        return frame

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.prefetch:
                while self._frame is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._frame is not None:
                self.stats.skipped += 1
            self._frame = frame
            self._count(frame)
            self._cond.notify_all()
        for arrived in self.arrivals:
            arrived.set()

    def _count(self, frame: Frame) -> None:
        s = self.stats
        s.frames += 1
        s.last_frame_at = time.monotonic()
        s.decode_cpu_s += frame.decode_cpu_s
        s.height, s.width = frame.image.shape[:2]

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            cap = self._open()
            if cap is None:
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, FILE_BACKOFF_MAX_S if self.file else LIVE_BACKOFF_MAX_S)
                self.stats.reconnects += 1
                continue
            backoff = 0.5
            ended = self._read_all(cap)
            if not self._stop.is_set():  # stopping is not losing the camera
                self._lost()  # before the release, which can wait on a server that is gone
            cap.release()
            if ended and self.file and not self.loop:
                self.finished.set()
                break

    def _open(self) -> Capture | None:
        try:
            cap = open_source(self.source, self.options)
        except CaptureUnavailable as exc:
            self._lost()
            self._say(f"camera {self.id}: {exc}", warn=self.stats.reconnects == 0)
            return None
        if cap is None:
            self._lost()
            log.warning("camera %s: cannot open %s; retrying", self.id, self.shown)
            return None
        self.stats.connected, self.stats.decoder = True, cap.decoder
        if self._lost_at is not None:
            down = time.monotonic() - self._lost_at
            self._say(f"camera {self.id}: reading {self.shown} again after {down:.1f} s", down_s=round(down, 2))
            self._lost_at = None
        return cap

    def _lost(self) -> None:
        """A live source stopped delivering (closed, failed or stalled): said once, timed until it is back."""
        if self.stats.connected and not self.file:
            self._lost_at = self.stats.last_frame_at or time.monotonic()
            self._say(f"camera {self.id}: lost {self.shown}")
        self.stats.connected = False

    def _say(self, message: str, down_s: float | None = None, warn: bool = True) -> None:
        if warn:
            log.warning("%s", message)
            self._on_event(CameraEvent(self.id, message, down_s))

    def _read_all(self, cap: Capture) -> bool:
        """Read until the source ends (True) or stops delivering / we are stopped (False)."""
        fps = cap.fps()
        interval = 1.0 / fps if self.file and not self.prefetch and fps > 0 else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            frame = cap.read()
            if frame is None:
                return self.file
            self._put(frame)
            if interval:
                next_at += interval
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    return False
        return False
