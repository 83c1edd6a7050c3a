"""`edge-agent install`: the unit, a config template and the state layout, under a root (for packaging)."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path


def _template(name: str) -> str:
    return resources.files("agent").joinpath("templates", name).read_text()


def default_exec() -> str:
    found = shutil.which("edge-agent")
    return found or str(Path(sys.executable).with_name("edge-agent"))


def install(root: Path, exec_path: str | None = None) -> list[Path]:
    """Write what is missing or stale; never overwrite an existing config. Returns the paths written."""
    written = []
    unit = root / "etc/systemd/system/edge-agent.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(_template("edge-agent.service").replace("{exec}", exec_path or default_exec()))
    written.append(unit)
    config = root / "etc/edge-agent/agent.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if not config.exists():
        config.write_text(_template("agent.toml"))
        written.append(config)
    for sub in ("store", "selection"):
        (root / "var/lib/edge-agent" / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/cache/edge-agent/engines").mkdir(parents=True, exist_ok=True)
    return written
