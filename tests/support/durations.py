"""The suite measured on every run: time per test module against tests/budget.toml, printed at the end.

A module over its budget is named (with its time and budget) but does not fail the run: these machines are
noisy, and a timed assert would fail for the machine, not the code. The budget is what a cold run took, plus
a quarter; re-measure it with `pytest --write-budget` after a change that moves a module's time on purpose."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the tests run on 3.11; the device side on 3.10 never loads this
    import tomli as tomllib

BUDGET = Path(__file__).resolve().parents[1] / "budget.toml"
_SPENT: dict[str, float] = defaultdict(float)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--write-budget", action="store_true",
                     help="write tests/budget.toml from this run's time per module (x1.25, at least 5 s)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _SPENT[report.nodeid.split("::", 1)[0]] += report.duration


def _budget() -> dict[str, float]:
    try:
        return {k: float(v) for k, v in tomllib.loads(BUDGET.read_text()).get("seconds", {}).items()}
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not _SPENT:
        return
    budget = _budget()
    write = terminalreporter.write_line
    terminalreporter.section("time per module (budget: tests/budget.toml)")
    for module, spent in sorted(_SPENT.items(), key=lambda kv: -kv[1]):
        limit = budget.get(module)
        mark = "" if limit is None else (f"  OVER budget {limit:.0f} s" if spent > limit else f"  ({limit:.0f} s)")
        write(f"{spent:8.1f} s  {module}{mark}")
    over = [m for m, s in _SPENT.items() if m in budget and s > budget[m]]
    write(f"{sum(_SPENT.values()):8.1f} s  in all; {len(over)} module(s) over budget"
          + (f": {', '.join(sorted(over))}" if over else ""))
    if config.getoption("--write-budget"):
        lines = [f'"{m}" = {max(5.0, round(s * 1.25)):.0f}' for m, s in sorted(_SPENT.items())]
        BUDGET.write_text("# Seconds per test module: a cold run's time x1.25 (tests/support/durations.py).\n"
                          "[seconds]\n" + "\n".join(lines) + "\n")
        write(f"wrote {BUDGET}")
