"""Candidates: every artifact × adapter × device × setting that the probe allows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtimes.adapters.base import HostTraits
from runtimes.manifest import Manifest
from runtimes.registry import adapter_class, loads

from .probe import Probe


@dataclass
class Candidate:
    target: str
    runtime: str
    device: str
    settings: dict[str, Any]
    precision: str  # the effective precision, which picks the golden tolerance
    status: str = "ok"
    reason: str | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    executes_on: str | None = None
    samples: list[float] = field(default_factory=list, repr=False)

    @property
    def key(self) -> str:
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.settings.items()))
        return f"{self.target}/{self.runtime}/{self.device}/{opts}"

    def exclude(self, reason: str) -> None:
        self.status, self.reason = "excluded", reason

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "runtime": self.runtime, "device": self.device, "settings": self.settings,
                "precision": self.precision, "status": self.status, "reason": self.reason,
                "median_ms": _r(self.median_ms), "p90_ms": _r(self.p90_ms), "executes_on": self.executes_on}


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def thread_options(probe: Probe, pipeline: bool) -> list[int]:
    cores = probe.cpu.cores
    # With a camera, decoding competes for the cores: one fewer inference thread can win.
    return sorted({cores, max(1, cores - 1)}) if pipeline else [cores]


def enumerate_candidates(manifest: Manifest, probe: Probe, pipeline: bool = False,
                         runtimes: list[str] | None = None) -> list[Candidate]:
    """Each runtime the probe found says which of its settings are worth measuring for each artifact."""
    host = HostTraits(tuple(thread_options(probe, pipeline)), frozenset(probe.cpu.flags))
    found: list[Candidate] = []
    for art in manifest.artifacts:
        for runtime, info in probe.runtimes.items():
            if (runtimes is not None and runtime not in runtimes) or not info.available \
                    or not loads(runtime, art.format):
                continue
            variants = adapter_class(runtime).variants(art.precision, art.settings, info.devices, host)
            found += [Candidate(art.target, runtime, v.device, v.settings, v.precision) for v in variants]
    return found
