"""Prometheus' own lint: `promtool check metrics` (Debian's prometheus package; the test command installs it)."""

from __future__ import annotations

import shutil
import subprocess


def lint(text: str) -> None:
    """Fail with promtool's own words when the exposition breaks its rules (units, names, label use)."""
    tool = shutil.which("promtool")
    if tool is None:
        raise AssertionError("promtool is not installed: run the README's test command, which installs it")
    done = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
