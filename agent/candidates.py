"""Candidates: every artifact × adapter × device × setting that the probe allows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtimes.manifest import Artifact, Manifest
from runtimes.registry import adapter_class

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
    cores = int(probe.cpu.get("cores", 1))
    # With a camera, decoding competes for the cores: one fewer inference thread can win.
    return sorted({cores, max(1, cores - 1)}) if pipeline else [cores]


def enumerate_candidates(manifest: Manifest, probe: Probe, pipeline: bool = False,
                         runtimes: list[str] | None = None) -> list[Candidate]:
    found: list[Candidate] = []
    for art in manifest.artifacts:
        for runtime, info in probe.runtimes.items():
            if runtimes is not None and runtime not in runtimes:
                continue
            if "unavailable" in info or art.runtime not in adapter_class(runtime).formats:
                continue
            found += _variants(art, runtime, info.get("devices", []), probe, pipeline)
    return found


def _variants(art: Artifact, runtime: str, devices: list[str], probe: Probe, pipeline: bool) -> list[Candidate]:
    threads = thread_options(probe, pipeline)
    if runtime == "onnxruntime":
        return [Candidate(art.target, runtime, d, {"device": d, **({"threads": t} if d == "cpu" else {})},
                          art.precision) for d in devices if d == "cpu" for t in threads] + \
               [Candidate(art.target, runtime, d, {"device": d}, art.precision) for d in devices if d != "cpu"]
    if runtime == "openvino":
        return _openvino(art, devices, probe, threads)
    if runtime == "tflite":
        return [Candidate(art.target, runtime, "cpu", {"threads": t}, art.precision) for t in threads]
    if runtime == "tensorrt":
        return [Candidate(art.target, runtime, devices[0] if devices else "cuda:0", {"precision": p}, p)
                for p in art.settings.get("precisions", ["fp16"])]
    # The fake runtime (tests) takes its options from the artifact, so a test bundle can describe
    # a slow, failing or stuck candidate.
    return [Candidate(art.target, runtime, d, dict(art.settings.get("options", {})), art.precision)
            for d in devices[:1]]


def _openvino(art: Artifact, devices: list[str], probe: Probe, threads: list[int]) -> list[Candidate]:
    found = []
    bf16 = bool({"amx_bf16", "bf16"} & set(probe.cpu.get("flags", [])))
    for device in devices:
        if art.precision == "int8":
            hints: list[str | None] = [None]
        else:
            # The precision hint is part of a candidate: bf16 is faster on AMX CPUs but costs accuracy.
            hints = ["f32", "bf16"] if device == "CPU" and bf16 else ["f32"] if device == "CPU" else ["f16"]
        for hint in hints:
            for t in threads if device == "CPU" else [0]:
                settings: dict[str, Any] = {"device": device}
                if hint:
                    settings["precision"] = hint
                if t:
                    settings["threads"] = t
                precision = {"bf16": "bf16", "f16": "fp16"}.get(hint or "", art.precision)
                found.append(Candidate(art.target, "openvino", device, settings, precision))
    return found
