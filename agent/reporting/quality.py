"""Quality telemetry: per camera, what the model's answers say about its certainty, counted per telemetry
interval and compared with a reference taken over the model's first hours on that camera. A model that has
become unsure of what it sees (new lighting, a moved camera, objects it was never trained on) shows as a
rising low-confidence share and as drift, long before anyone looks at its results."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from fleet.messages import CameraQuality, Telemetry
from runtimes.tasks.quality import Signals

from ..config import QualityConfig

BINS = 10
TOP_CLASSES = 20  # the class mix in telemetry: the most common labels, the rest counted as "(other)"


@dataclass
class Counts:
    hist: list[int] = field(default_factory=lambda: [0] * BINS)
    classes: Counter[str] = field(default_factory=Counter)
    frames: int = 0  # frames with a confidence
    low: int = 0

    def add(self, sig: Signals, low_threshold: float) -> None:
        for score in sig.scores:
            self.hist[min(BINS - 1, max(0, int(score * BINS)))] += 1
        self.classes.update(sig.classes)
        if sig.confidence is not None:
            self.frames += 1
            self.low += sig.confidence < low_threshold

    def merge(self, other: Counts) -> None:
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]
        self.classes.update(other.classes)
        self.frames, self.low = self.frames + other.frames, self.low + other.low


@dataclass
class Track:
    """One camera: this interval's counts, and the reference of the model now answering."""

    digest: str
    reference_until: float
    interval: Counts = field(default_factory=Counts)
    reference: Counts = field(default_factory=Counts)


class QualityTracker:
    def __init__(self, cfg: QualityConfig) -> None:
        self.cfg = cfg
        self._tracks: dict[str, Track] = {}
        self._lock = threading.Lock()  # answers arrive on camera threads, telemetry takes on the main one

    def observe(self, camera: str, digest: str, sig: Signals, now: float | None = None) -> None:
        """One answer. Another model on this camera (an update, a rollback) starts a new reference."""
        if not self.cfg.enabled:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            track = self._tracks.get(camera)
            if track is None or track.digest != digest:
                track = self._tracks[camera] = Track(digest, now + self.cfg.reference_s)
            track.interval.add(sig, self.cfg.low_confidence)

    def take(self, camera: str, now: float | None = None) -> CameraQuality | None:
        """This interval's figures (None: nothing answered), and a fresh interval."""
        now = time.monotonic() if now is None else now
        with self._lock:
            track = self._tracks.get(camera)
            if track is None:
                return None
            counts, track.interval = track.interval, Counts()
            collecting = now < track.reference_until
            if collecting:
                track.reference.merge(counts)
        return _figures(counts, track.reference, collecting, self.cfg.low_confidence)


def _figures(counts: Counts, reference: Counts, collecting: bool, low: float) -> CameraQuality:
    total = sum(counts.classes.values())
    top = counts.classes.most_common(TOP_CLASSES)
    classes = {label: round(n / total, 4) for label, n in top}
    if total and len(counts.classes) > TOP_CLASSES:
        classes["(other)"] = round(1 - sum(n for _, n in top) / total, 4)
    ready = not collecting and reference.frames > 0
    return CameraQuality(
        frames=counts.frames, confidence_hist=counts.hist, classes=classes, low_threshold=low,
        low_confidence_share=round(counts.low / counts.frames, 4) if counts.frames else None,
        drift=js_distance(counts.hist, reference.hist) if ready else None,
        class_drift=js_distance(*_aligned(counts.classes, reference.classes)) if ready else None,
        reference_frames=reference.frames)


def quality_summary(t: Telemetry) -> dict[str, float | None]:
    """For the device's status (what `edgectl status` shows): the low-confidence share over every camera's
    frames of the interval, and the largest drift of any camera."""
    qs = [c.quality for c in t.cameras.values() if c.quality is not None and c.quality.frames]
    frames = sum(q.frames for q in qs)
    low = sum((q.low_confidence_share or 0.0) * q.frames for q in qs)
    drifts = [q.drift for q in qs if q.drift is not None]
    return {"low_confidence_share": round(low / frames, 4) if frames else None,
            "drift": max(drifts) if drifts else None}


def _aligned(a: Counter[str], b: Counter[str]) -> tuple[list[int], list[int]]:
    labels = sorted(set(a) | set(b))
    return [a[k] for k in labels], [b[k] for k in labels]


def js_distance(p: list[int], q: list[int]) -> float | None:
    """The Jensen-Shannon distance of two count vectors, base 2: 0 when alike, 1 when disjoint."""
    sp, sq = sum(p), sum(q)
    if not sp or not sq:
        return None
    div = 0.0
    for a, b in zip(p, q, strict=True):
        pa, qb = a / sp, b / sq
        m = (pa + qb) / 2
        div += (pa * math.log2(pa / m) if pa else 0.0) + (qb * math.log2(qb / m) if qb else 0.0)
    return round(math.sqrt(max(0.0, div / 2)), 4)
