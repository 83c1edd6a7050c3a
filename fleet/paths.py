"""Where edgectl keeps its keys and toolchains. EDGECTL_HOME moves all of it (tests, CI, packaging)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    explicit = os.environ.get("EDGECTL_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "edgectl"


def keys_dir() -> Path:
    return home() / "keys"


def toolchains_dir() -> Path:
    # Toolchains are large and re-creatable: they live in the cache, shared by every EDGECTL_HOME
    # unless EDGECTL_TOOLCHAINS says otherwise.
    explicit = os.environ.get("EDGECTL_TOOLCHAINS")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "edgectl" / "toolchains"
