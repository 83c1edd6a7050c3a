"""Selection that follows the device. The runtime ranking measured at start is right for the device as it
was then; another process taking a core or a throttling board can make another candidate (often the same
artifact with fewer threads) the faster one. `Follower` watches one model's p95 per telemetry interval
against a baseline taken once the model has settled, and says when a change has lasted long enough to be
worth measuring again; `keeps` is the hysteresis that decides whether the re-measure's nominee, tried on the live
frames, is worth the switch."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

from ..config import FollowConfig


@dataclass(frozen=True)
class Drift:
    """A sustained change of the serving model's p95 against its baseline."""

    p95_ms: float
    baseline_ms: float
    seconds: float

    @property
    def ratio(self) -> float:
        return self.p95_ms / self.baseline_ms

    def describe(self) -> str:
        return (f"p95 {self.p95_ms:.1f} ms (median of {self.seconds:.0f} s) is {self.ratio:.2f}x its baseline "
                f"{self.baseline_ms:.1f} ms")

    def data(self) -> dict[str, Any]:
        return {"p95_ms": round(self.p95_ms, 3), "baseline_ms": round(self.baseline_ms, 3),
                "ratio": round(self.ratio, 3), "seconds": round(self.seconds, 1)}


class Follower:
    """warming up → taking the baseline → watching → (a drift) → measuring, until `restart`. A drift is the
    median p95 of the last `sustain_s` off the baseline by `ratio` either way: one noisy interval neither
    starts nor stops it."""

    def __init__(self, cfg: FollowConfig, now: float) -> None:
        self.cfg = cfg
        self.baseline_ms: float | None = None
        self.measuring = False
        self._samples: list[float] = []
        self._recent: deque[tuple[float, float]] = deque()
        self._settled_at = self._watching_from = now + cfg.warmup_s
        self._quiet_until = now

    def restart(self, now: float, cooldown: bool = False) -> None:
        """A new serving candidate (or a re-measure that kept the old one): a new baseline is due."""
        self.baseline_ms, self.measuring, self._samples = None, False, []
        self._recent.clear()
        self._settled_at = now + self.cfg.warmup_s
        if cooldown:
            self._quiet_until = now + self.cfg.cooldown_s

    def observe(self, p95_ms: float | None, now: float) -> Drift | None:
        if not self.cfg.enabled or self.measuring or p95_ms is None or now < self._settled_at:
            return None
        if self.baseline_ms is None:
            self._take_baseline(p95_ms, now)
            return None
        self._recent.append((now, p95_ms))
        while self._recent[0][0] <= now - self.cfg.sustain_s:
            self._recent.popleft()
        level = statistics.median(v for _, v in self._recent)
        if now - self._watching_from < self.cfg.sustain_s or now < self._quiet_until or not self._off(level):
            return None
        self.measuring = True
        return Drift(level, self.baseline_ms, now - self._recent[0][0])

    def _take_baseline(self, p95_ms: float, now: float) -> None:
        self._samples.append(p95_ms)
        if now >= self._settled_at + self.cfg.baseline_s:
            self.baseline_ms = statistics.median(self._samples)
            self._watching_from = now

    def _off(self, level: float) -> bool:
        base, ratio = self.baseline_ms or level, self.cfg.ratio
        return level > base * ratio or level < base / ratio


def keeps(before_ms: float | None, after_ms: float | None, min_gain: float) -> bool:
    """Whether a nominee that served on trial stays: its p95 on the live frames beats the previous candidate's
    (over the same length of time just before) by `min_gain`. No frames on trial: it goes; no figure from
    before (too few frames): the re-measure's word stands."""
    if after_ms is None:
        return False
    return before_ms is None or after_ms < before_ms * (1 - min_gain)
