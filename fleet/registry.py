"""Devices this laptop has seen, so `edgectl status` knows how many to wait for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import paths


def path() -> Path:
    return paths.home() / "devices.json"


_read: dict[tuple[Path, int, int], dict[str, dict[str, Any]]] = {}  # one parse per version of the file


def load() -> dict[str, dict[str, Any]]:
    """A copy (callers change it); parsed once per version of the file, as one command reads it thrice."""
    try:
        where = path()
        st = where.stat()
        key = (where, st.st_mtime_ns, st.st_size)
        if key not in _read:
            _read.clear()
            _read[key] = json.loads(where.read_text())
    except (OSError, ValueError):
        return {}
    return dict(_read[key])


def save(devices: dict[str, dict[str, Any]]) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(devices, sort_keys=True))  # compact: C-encoded, for 10,000 devices
    tmp.replace(target)


def remember(seen: dict[str, dict[str, Any]]) -> None:
    devices = load()
    devices.update(seen)
    save(devices)


def forget(device: str) -> bool:
    devices = load()
    found = devices.pop(device, None) is not None
    save(devices)
    return found
