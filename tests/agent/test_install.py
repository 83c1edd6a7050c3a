"""`edge-agent install` and the unit's quality: verify prints nothing, exposure ≤ 2.5."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

EXEC = str(Path(sys.executable).with_name("edge-agent"))
needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")


def test_install_writes_unit_config_and_state(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "etc/systemd/system/edge-agent.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=edge-agent",
                 "ProtectSystem=strict", "NoNewPrivileges=yes", "DynamicUser=yes", "SupplementaryGroups=video",
                 "StartLimitBurst="):
        assert line in unit
    assert f"ExecStart={EXEC} run" in unit
    assert not (tmp_path / "var/lib/edge-agent").exists()  # systemd creates it for the dynamic user
    config = tmp_path / "etc/edge-agent/agent.toml"
    config.write_text("# mine\n")
    CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    assert config.read_text() == "# mine\n"  # never overwritten


def test_config_template_is_valid(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    result = CliRunner().invoke(app, ["config", "check", str(tmp_path / "etc/edge-agent/agent.toml")])
    assert result.exit_code == 0, result.output


@needs_systemd
def test_systemd_analyze_verify_prints_nothing(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    # verify exits 0 even on unknown keys: the output is what tells.
    out = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "etc/systemd/system/edge-agent.service")],
                         capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "" and out.stderr.strip() == "", out.stderr


@needs_systemd
def test_security_exposure_at_most_2_5(tmp_path: Path) -> None:
    CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    out = subprocess.run(["systemd-analyze", "security", "--offline=true", f"--root={tmp_path}",
                          "edge-agent.service"], capture_output=True, text=True, check=False)
    match = re.search(r"Overall exposure level for edge-agent.service: ([0-9.]+)", out.stdout + out.stderr)
    assert match, out.stdout[-500:]
    assert float(match.group(1)) <= 2.5


def test_only_existing_device_groups_are_named(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text("root:x:0:\nvideo:x:44:\n")
    CliRunner().invoke(app, ["install", "--root", str(tmp_path), "--exec", EXEC])
    unit = (tmp_path / "etc/systemd/system/edge-agent.service").read_text()
    assert "SupplementaryGroups=video\n" in unit  # no `render` here: systemd would fail with 216/GROUP
