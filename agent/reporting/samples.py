"""Low-confidence samples for relabelling: the frames the model was least sure of are the ones worth
labelling next. Off by default (they are images of the customer's scene); at most one per camera per
interval, size-capped, and durable through the outbox like events, so a flaky link loses none."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Any

from fleet.messages import ModelRef, QualitySample
from runtimes.tasks import Answer
from runtimes.tasks.quality import Signals

from ..config import QualityConfig
from ..video.snapshot import encode

log = logging.getLogger(__name__)


class Samples:
    def __init__(self, device: str, cfg: QualityConfig, send: Callable[[str, bytes], None]) -> None:
        self.device, self.cfg = device, cfg
        self._send = send  # (camera, payload): to the outbox
        self._last: dict[str, float] = {}

    def wanted(self, camera: str, sig: Signals) -> bool:
        if not self.cfg.samples or sig.confidence is None or sig.confidence >= self.cfg.low_confidence:
            return False
        return time.monotonic() - self._last.get(camera, -1e9) >= self.cfg.sample_interval_s

    def offer(self, camera: str, sig: Signals, answer: Answer, frame: Any, model: ModelRef) -> bool:
        """Send this frame when it is unsure enough and the camera's interval has passed."""
        if frame is None or not self.wanted(camera, sig) or sig.confidence is None:
            return False
        self._last[camera] = time.monotonic()
        jpeg = self._jpeg(frame)
        if jpeg is None:
            return False
        sample = QualitySample(device=self.device, camera=camera, ts=time.time(), model=model,
                               confidence=round(sig.confidence, 4), answer=answer.model_dump(mode="json"),
                               jpeg_b64=base64.b64encode(jpeg).decode())
        self._send(camera, sample.model_dump_json().encode())
        return True

    def _jpeg(self, frame: Any) -> bytes | None:
        """Within the size cap: at the configured quality and width, else once more at half of both."""
        cfg = self.cfg
        for quality, width in ((cfg.sample_quality, cfg.sample_max_width),
                               (max(1, cfg.sample_quality // 2), max(64, cfg.sample_max_width // 2))):
            jpeg = encode(frame, quality, width)
            if jpeg is not None and len(jpeg) <= cfg.sample_max_bytes:
                return jpeg
        log.info("a low-confidence sample stays over %d bytes: not sent", cfg.sample_max_bytes)
        return None
