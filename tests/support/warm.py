"""Devices that start warm where selection is not what a test checks.

The first agent of a session on a bundle measures every candidate (golden checks and benchmarks, seconds to
a minute); every later agent of a module that tests something else (updates, faults, reports, the API) would
measure the same candidates on the same machine again. The pool makes that measurement once per session and
bundle, with the device's own `edge-agent select` (the same child the agent runs), and copies its decision into
a fresh state directory before the agent starts: the agent then starts as a device that had selected before.
Tests of selection, fast start and following the load keep their cold devices."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

from builder import keys


class SelectionPool:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._made: dict[tuple[Path, bool], list[Path]] = {}

    def seed(self, state: Path, bundle: Path, source: Path | None) -> None:
        """Put this session's decision for `bundle` (on a camera source or not) in `state`'s selection cache."""
        target = state / "selection"
        target.mkdir(parents=True, exist_ok=True)
        for decision in self._decisions(bundle.resolve(), source):
            shutil.copy2(decision, target / decision.name)

    def _decisions(self, bundle: Path, source: Path | None) -> list[Path]:
        with self._lock:
            key = (bundle, source is not None)
            if key not in self._made:
                self._made[key] = self._select(bundle, source, len(self._made))
            return self._made[key]

    def _select(self, bundle: Path, source: Path | None, index: int) -> list[Path]:
        where = self.root / f"pool-{index}"
        trusted = self.root / "trusted.pem"
        trusted.write_bytes(keys.load().public_pem)
        cmd = [sys.executable, "-m", "agent", "select", str(bundle), "--state-dir", str(where), "--budget", "1",
               "--trusted-key", str(trusted), "--json", *(["--source", str(source)] if source else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:  # a bundle that does not verify (a test of that): the agent finds out itself
            return []
        return sorted((where / "selection").glob("*.json"))


# The pool of the module being run, or None in a module marked `cold_devices` (set by tests/conftest.py; a
# module-scoped fixture that starts an agent sees it too).
_active: SelectionPool | None = None


def activate(pool: SelectionPool | None) -> None:
    global _active
    _active = pool


def active() -> SelectionPool | None:
    return _active
