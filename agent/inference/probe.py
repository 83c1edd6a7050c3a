"""What this device is and what it can run. Each probe returns a value or a reason; none raises."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runtimes.adapters.base import RuntimeInfo
from runtimes.errors import RuntimeUnavailable
from runtimes.registry import probe_all

# /proc/cpuinfo flag → our name. ARM reports NEON as "asimd" (64-bit) or "neon" (32-bit).
FLAGS = {"avx2": "avx2", "avx512f": "avx512", "avx512_vnni": "vnni", "avx_vnni": "avx_vnni",
         "amx_tile": "amx", "amx_bf16": "amx_bf16", "avx512_bf16": "bf16", "amx_int8": "amx_int8",
         "asimd": "neon", "neon": "neon", "asimddp": "dotprod", "f16c": "f16c", "fma": "fma"}


class Typed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cpu(Typed):
    model: str
    cores: int = 1
    flags: list[str] = Field(default_factory=list)


class RuntimeFound(Typed):
    """A runtime the probe found (version, devices), or why it cannot run here (`unavailable`)."""

    version: str | None = None
    devices: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    unavailable: str | None = None

    @property
    def available(self) -> bool:
        return self.unavailable is None

    def as_dict(self) -> dict[str, Any]:
        """`edge-agent probe --json`'s runtime entry: `{"version", "devices"}` or `{"unavailable": reason}`."""
        if self.unavailable is not None:
            return {"unavailable": self.unavailable}
        return {"version": self.version, "devices": self.devices, **({"notes": self.notes} if self.notes else {})}


class DecodePaths(Typed):
    """How this device can decode cameras: OpenCV's FFmpeg, and GStreamer with its decoders."""

    opencv_ffmpeg: bool = False
    gstreamer: str | None = None  # its version; None without GStreamer or its Python bindings
    hardware: list[str] = Field(default_factory=list)  # hardware decoders present, best first
    software: list[str] = Field(default_factory=list)


class Probe(Typed):
    arch: str
    os: str
    cpu: Cpu
    memory_mb: int
    runtimes: dict[str, RuntimeFound]
    accelerators: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    decode: DecodePaths = Field(default_factory=DecodePaths)

    def as_dict(self) -> dict[str, Any]:
        doc = self.model_dump()
        doc["runtimes"] = {name: found.as_dict() for name, found in self.runtimes.items()}
        return doc

    def hardware(self) -> dict[str, Any]:
        """What status says about the hardware."""
        return {"arch": self.arch, "cpu": self.cpu.model, "cores": self.cpu.cores, "memory_mb": self.memory_mb,
                "accelerators": self.accelerators, "hw_decoders": self.decode.hardware}

    def fingerprint(self) -> str:
        """Hardware and runtime versions: a change in either invalidates a cached selection."""
        key = {"arch": self.arch, "cpu": self.cpu.model_dump(), "accelerators": self.accelerators,
               "runtimes": {n: r.version for n, r in self.runtimes.items()}}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> Cpu:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("model name", "hardware") and model in ("", platform.machine()):
                model = value.strip()
            elif key in ("flags", "features"):
                flags |= {FLAGS[f] for f in value.split() if f in FLAGS}
    except OSError:
        pass
    return Cpu(model=model, cores=os.cpu_count() or 1, flags=sorted(flags))


def memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def runtimes() -> dict[str, RuntimeFound]:
    found: dict[str, RuntimeFound] = {}
    for name, info in probe_all().items():
        if isinstance(info, RuntimeUnavailable):
            found[name] = RuntimeFound(unavailable=info.reason)
        elif isinstance(info, RuntimeInfo):
            found[name] = RuntimeFound(version=info.version, devices=info.devices, notes=info.notes)
    return found


def jetson() -> tuple[list[str], list[str]]:
    """Jetson L4T release and power mode, when this is a Jetson."""
    from runtimes.adapters.tensorrt import l4t_release

    release = l4t_release()
    if not release:
        return [], []
    notes = [f"L4T {release}"]
    if shutil.which("nvpmodel"):
        try:
            out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=5, check=False)
            notes.append("nvpmodel: " + " ".join(out.stdout.split())[:120])
        except (OSError, subprocess.TimeoutExpired) as exc:
            notes.append(f"nvpmodel unavailable: {exc}")
    return ["jetson"], notes


def accelerators(found: dict[str, RuntimeFound]) -> tuple[list[str], list[str]]:
    accs, notes = jetson()
    if Path("/dev/nvidia0").exists():
        accs.append("nvidia-gpu")
    if Path("/dev/apex_0").exists() or "edgetpu" in _devices(found, "tflite"):
        accs.append("coral-edgetpu")
    for dev in _devices(found, "openvino"):
        if dev.startswith(("GPU", "NPU")):
            accs.append(f"openvino-{dev.lower()}")
    if not accs:
        notes.append("no accelerator found: CPU runtimes only")
    return accs, notes


def _devices(found: dict[str, RuntimeFound], name: str) -> list[str]:
    return found[name].devices if name in found else []


def decode_paths() -> DecodePaths:
    from ..video.gst import HARDWARE, SOFTWARE, find_elements

    try:
        import cv2

        ffmpeg = any(line.strip().startswith("FFMPEG:") and "YES" in line
                     for line in cv2.getBuildInformation().splitlines())
    except ImportError:
        ffmpeg = False
    version, present = find_elements(tuple(HARDWARE) + SOFTWARE)
    hardware, software = [n for n in present if n in HARDWARE], [n for n in present if n in SOFTWARE]
    return DecodePaths(opencv_ffmpeg=ffmpeg, gstreamer=version, hardware=hardware, software=software)


def probe() -> Probe:
    found = runtimes()
    accs, notes = accelerators(found)
    return Probe(arch=platform.machine(), os=f"{platform.system()} {platform.release()}", cpu=cpu_info(),
                 memory_mb=memory_mb(), runtimes=found, accelerators=accs, notes=notes, decode=decode_paths())


def probe_isolated() -> Probe:
    """Probe in a child process, so the agent imports only the runtimes it ends up serving with."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "agent", "probe", "--json"], capture_output=True, text=True,
                          check=False)
    try:
        return Probe.model_validate_json(proc.stdout)
    except ValueError:  # pydantic's ValidationError is a ValueError
        return probe()
