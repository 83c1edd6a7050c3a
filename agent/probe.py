"""What this device is and what it can run. Each probe returns a value or a reason; none raises."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from runtimes.adapters.base import RuntimeInfo
from runtimes.errors import RuntimeUnavailable
from runtimes.registry import probe_all

# /proc/cpuinfo flag → our name. ARM reports NEON as "asimd" (64-bit) or "neon" (32-bit).
FLAGS = {"avx2": "avx2", "avx512f": "avx512", "avx512_vnni": "vnni", "avx_vnni": "avx_vnni",
         "amx_tile": "amx", "amx_bf16": "amx_bf16", "avx512_bf16": "bf16", "amx_int8": "amx_int8",
         "asimd": "neon", "neon": "neon", "asimddp": "dotprod", "f16c": "f16c", "fma": "fma"}


@dataclass
class Probe:
    arch: str
    os: str
    cpu: dict[str, Any]
    memory_mb: int
    runtimes: dict[str, dict[str, Any]]
    accelerators: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fingerprint(self) -> str:
        """Hardware and runtime versions: a change in either invalidates a cached selection."""
        key = {"arch": self.arch, "cpu": self.cpu, "accelerators": self.accelerators,
               "runtimes": {n: r.get("version") for n, r in self.runtimes.items()}}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cpu_info(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
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
    return {"model": model, "cores": os.cpu_count() or 1, "flags": sorted(flags)}


def memory_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def runtimes() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, info in probe_all().items():
        if isinstance(info, RuntimeUnavailable):
            found[name] = {"unavailable": info.reason}
        elif isinstance(info, RuntimeInfo):
            found[name] = {"version": info.version, "devices": info.devices}
            if info.notes:
                found[name]["notes"] = info.notes
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


def accelerators(found: dict[str, dict[str, Any]]) -> tuple[list[str], list[str]]:
    accs, notes = jetson()
    if Path("/dev/nvidia0").exists():
        accs.append("nvidia-gpu")
    if Path("/dev/apex_0").exists() or "edgetpu" in found.get("tflite", {}).get("devices", []):
        accs.append("coral-edgetpu")
    for dev in found.get("openvino", {}).get("devices", []):
        if dev.startswith(("GPU", "NPU")):
            accs.append(f"openvino-{dev.lower()}")
    if not accs:
        notes.append("no accelerator found: CPU runtimes only")
    return accs, notes


def probe() -> Probe:
    found = runtimes()
    accs, notes = accelerators(found)
    return Probe(arch=platform.machine(), os=f"{platform.system()} {platform.release()}", cpu=cpu_info(),
                 memory_mb=memory_mb(), runtimes=found, accelerators=accs, notes=notes)


def probe_isolated() -> Probe:
    """Probe in a child process, so the agent imports only the runtimes it ends up serving with."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "agent", "probe", "--json"], capture_output=True, text=True,
                          check=False)
    try:
        return Probe(**json.loads(proc.stdout))
    except (ValueError, TypeError):
        return probe()
