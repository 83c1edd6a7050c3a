"""Camera sources with a capture thread that keeps only the newest frame and counts skipped ones.

Sources: a USB index or /dev/videoN, rtsp://…, a GStreamer pipeline (contains '!'), or a file (looped or
once; at its own frame rate like a camera, or as fast as the consumer takes frames). Reconnects with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from runtimes.processing import Array

log = logging.getLogger(__name__)


@dataclass
class CameraStats:
    frames: int = 0
    skipped: int = 0
    reconnects: int = 0
    connected: bool = False
    last_frame_at: float = 0.0


def open_capture(source: str) -> Any:
    import cv2

    if source.isdigit():
        return cv2.VideoCapture(int(source))
    if "!" in source:
        return cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
    if source.startswith(("rtsp://", "rtsps://", "http://", "https://")):
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG)
    return cv2.VideoCapture(source)


def is_file(source: str) -> bool:
    return not source.isdigit() and "!" not in source and "://" not in source and not source.startswith("/dev/")


class Camera:
    def __init__(self, cam_id: str, source: str, loop: bool = True, realtime: bool = True) -> None:
        self.id, self.source, self.loop = cam_id, source, loop
        self.file = is_file(source)
        # A file read "as fast as taken" is prefetched one frame ahead instead of decoded and thrown away.
        self.prefetch = self.file and not realtime
        self.stats = CameraStats()
        self._frame: Array | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"camera-{cam_id}", daemon=True)
        self.finished = threading.Event()  # a file played once has ended

    def start(self) -> Camera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def get(self, timeout: float) -> Array | None:
        """The newest frame, waiting up to timeout; None when none arrived."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
        return frame

    def _put(self, frame: Array) -> None:
        with self._cond:
            if self.prefetch:
                while self._frame is not None and not self._stop.is_set():
                    self._cond.wait(0.5)
            elif self._frame is not None:
                self.stats.skipped += 1
            self._frame = frame
            self.stats.frames += 1
            self.stats.last_frame_at = time.monotonic()
            self._cond.notify_all()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            cap = open_capture(self.source)
            if not cap.isOpened():
                self.stats.connected = False
                log.warning("camera %s: cannot open %s; retrying in %.1f s", self.id, self.source, backoff)
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, 30.0)
                self.stats.reconnects += 1
                continue
            backoff = 0.5
            self.stats.connected = True
            ended = self._read_all(cap)
            cap.release()
            self.stats.connected = False
            if ended and self.file and not self.loop:
                self.finished.set()
                break

    def _read_all(self, cap: Any) -> bool:
        """Read until the source ends (True) or stops delivering / we are stopped (False)."""
        import cv2

        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        interval = 1.0 / fps if self.file and not self.prefetch and fps > 0 else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            ok, frame = cap.read()
            if not ok:
                return self.file
            self._put(frame)
            if interval:
                next_at += interval
                if self._stop.wait(max(0.0, next_at - time.monotonic())):
                    return False
        return False
