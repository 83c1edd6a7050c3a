"""JPEG snapshots of the frames detections came from: what an operator looks at when a result surprises."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from runtimes.tasks import Detection

from ..config import SnapshotConfig

log = logging.getLogger(__name__)


class Snapshots:
    def __init__(self, cfg: SnapshotConfig, publish: Callable[[str, bytes], object]) -> None:
        self.cfg = cfg
        self._publish = publish  # (camera, jpeg)
        self._last: dict[str, float] = {}

    def wanted(self, camera: str, boxes: list[Detection]) -> bool:
        if not self.cfg.enabled or not any(self._matches(b) for b in boxes):
            return False
        return time.monotonic() - self._last.get(camera, -1e9) >= self.cfg.min_interval_s

    def _matches(self, box: Detection) -> bool:
        return box.score >= self.cfg.min_score and (not self.cfg.labels or box.label in self.cfg.labels)

    def offer(self, camera: str, boxes: list[Detection], frame: Any) -> bool:
        """Encode and send the frame when a box matches and the camera's interval has passed."""
        if frame is None or not self.wanted(camera, boxes):
            return False
        self._last[camera] = time.monotonic()
        jpeg = encode(frame, self.cfg.quality, self.cfg.max_width)
        if jpeg is None:
            return False
        self._publish(camera, jpeg)
        return True


def encode(frame: Any, quality: int, max_width: int) -> bytes | None:
    import cv2

    h, w = frame.shape[:2]
    if w > max_width:
        frame = cv2.resize(frame, (max_width, int(h * max_width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        log.warning("could not encode a snapshot of a %dx%d frame", w, h)
        return None
    return bytes(buf)
