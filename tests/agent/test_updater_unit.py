"""The updater's admission rules, on a fake host (no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.update.store import Store
from agent.update.updater import UpdateFailed, Updater
from fleet.messages import Desired
from fleet.mqtt import BrokerSettings, MqttClient
from fleet.topics import Topics


class FakeBundle:
    class manifest:  # mimics Bundle.manifest
        version = 5


class Host:
    def __init__(self) -> None:
        self.transfers: list[tuple[int, float]] = []

    def current(self) -> Any:
        return FakeBundle()

    def transfer(self, version: int, percent: float) -> None:
        self.transfers.append((version, percent))

    def report(self, phase: str, digest: str, message: str, **data: Any) -> None:
        self.last = (phase, message)


def updater(tmp_path: Path) -> Updater:
    client = MqttClient("unit", BrokerSettings(port=1))
    return Updater(Host(), Store(tmp_path / "store"), client, Topics(), "unit", soak_s=0)  # type: ignore[arg-type]


def desired(version: int, size: int = 1000, force: bool = False) -> Desired:
    return Desired(digest="a" * 64, name="m", version=version, size=size, chunks=1, force=force)


def test_downgrade_needs_force(tmp_path: Path) -> None:
    u = updater(tmp_path)
    with pytest.raises(UpdateFailed, match="older"):
        u._check_admission(desired(4))
    u._check_admission(desired(4, force=True))


def test_bundle_larger_than_free_disk_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    u = updater(tmp_path)
    monkeypatch.setattr(u.store, "free_bytes", lambda: 10 << 20)
    with pytest.raises(UpdateFailed, match="MiB free"):
        u._check_admission(desired(6, size=50 << 20))
