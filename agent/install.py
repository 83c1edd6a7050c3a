"""`edge-agent install`: the unit and a config template under a root (for packaging); systemd makes the state
layout (StateDirectory=, CacheDirectory=) for the dynamic user."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path


def _template(name: str) -> str:
    return resources.files("agent").joinpath("templates").joinpath(name).read_text()


def default_exec() -> str:
    found = shutil.which("edge-agent")
    return found or str(Path(sys.executable).with_name("edge-agent"))


DEVICE_GROUPS = ("video", "render")  # cameras; GPUs and NPUs


def device_groups(root: Path) -> str:
    """SupplementaryGroups= for the device groups that exist: systemd refuses to start a unit naming a
    missing group (216/GROUP), and `render` exists only where udev made it."""
    group_file = root / "etc/group" if (root / "etc/group").is_file() else Path("/etc/group")
    try:
        names = {line.split(":", 1)[0] for line in group_file.read_text().splitlines() if ":" in line}
    except OSError:
        names = {"video"}  # in Debian's base-passwd, so on every target
    present = [g for g in DEVICE_GROUPS if g in names]
    return f"SupplementaryGroups={' '.join(present)}" if present else "# no video/render group on this system"


def install(root: Path, exec_path: str | None = None) -> list[Path]:
    """Write what is missing or stale; never overwrite an existing config. Returns the paths written."""
    written = []
    unit = root / "etc/systemd/system/edge-agent.service"
    unit.parent.mkdir(parents=True, exist_ok=True)
    unit.write_text(_template("edge-agent.service").replace("{exec}", exec_path or default_exec())
                    .replace("{groups}", device_groups(root)))
    written.append(unit)
    config = root / "etc/edge-agent/agent.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if not config.exists():
        config.write_text(_template("agent.toml"))
        written.append(config)
    # The state and cache directories are systemd's to create (StateDirectory=, CacheDirectory=): with
    # DynamicUser= it makes them under /var/lib/private owned by the service's user; a directory made here
    # would be root's and need migrating. The agent makes its own layout inside (store/, selection/).
    return written
