"""The unit under a real systemd: a Debian 12 tree (debootstrap), booted with systemd-nspawn, running
`edge-agent install`'s unit with its hardening. Start, status text, watchdog restart, crash restart, stop.

The tree's own python3 (3.11) runs the checkout and the venv's packages, bound read-only at /opt/edgectl.
Long and needs root, debootstrap and systemd-nspawn (the test command installs them): marked `nspawn`.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder import keys
from tests.support.assets import ROOT
from tests.support.broker import Broker
from tests.support.mqtt import Recorder

pytestmark = [pytest.mark.nspawn, pytest.mark.slow]
TREE = Path(os.environ.get("EDGECTL_NSPAWN_TREE", "/var/tmp/edgectl-nspawn/root"))
PACKAGES = "systemd,systemd-sysv,dbus,libnss-systemd,python3"
DEVICE = "nsp1"
# nspawn on a host whose cgroup v1/v2 hybrid lacks some controllers: give the container cgroup v2.
ENV = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (the test command installs systemd-container and debootstrap)"
    return None


def ensure_tree() -> Path:
    """A minimal Debian 12 with systemd and python3, made once and kept (about a minute)."""
    if (TREE / "usr/bin/python3").exists() and (TREE / "lib/systemd/systemd").exists():
        return TREE
    TREE.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(TREE),
                           "http://deb.debian.org/debian"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        shutil.rmtree(TREE, ignore_errors=True)
        pytest.skip(f"debootstrap failed: {proc.stderr.strip().splitlines()[-1:]}")
    return TREE


def prepare(tree: Path, broker: Broker, media: Path) -> None:
    """The unit from `edge-agent install`, a config for this test, a faster watchdog, no leftover state."""
    from agent.install import install

    install(tree, "/usr/local/bin/edge-agent")
    launcher = tree / "usr/local/bin/edge-agent"
    launcher.write_text("#!/bin/sh\nexport PYTHONPATH=/opt/edgectl:/opt/edgectl/.venv/lib/python3.11/site-packages\n"
                        "exec /usr/bin/python3 -m agent \"$@\"\n")
    launcher.chmod(0o755)
    wants = tree / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "edge-agent.service").unlink(missing_ok=True)
    (wants / "edge-agent.service").symlink_to("/etc/systemd/system/edge-agent.service")
    dropin = tree / "etc/systemd/system/edge-agent.service.d"
    dropin.mkdir(parents=True, exist_ok=True)
    (dropin / "test.conf").write_text("[Service]\nWatchdogSec=5\nRestartSec=1\n")
    (tree / "etc/edge-agent/trusted.pem").write_bytes(keys.load().public_pem)
    (tree / "etc/edge-agent/agent.toml").write_text(
        f'device_id = "{DEVICE}"\nbundle = "/opt/bundle"\ntrusted_keys = ["/etc/edge-agent/trusted.pem"]\n'
        'telemetry_interval_s = 1\nselection_budget_s = 1\n'
        f'[broker]\nurl = "{broker.url}"\n[[cameras]]\nid = "cam0"\nsource = "/opt/media/video.mp4"\n'
        "[thresholds]\nno_frames_s = 2\n")
    for leftover in ("var/lib/private/edge-agent", "var/lib/edge-agent"):
        shutil.rmtree(tree / leftover, ignore_errors=True)


class Container:
    def __init__(self, tree: Path, binds: dict[Path, str], log: Path) -> None:
        args = [f"--bind-ro={ROOT}:/opt/edgectl"] + [f"--bind={src}:{dst}" for src, dst in binds.items()]
        self.proc = subprocess.Popen(["systemd-nspawn", "--register=no", "--keep-unit", "-q", "-D", str(tree), "-b",
                                      "--console=pipe", *args], env=ENV, stdout=log.open("wb"),
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.init = self._find_init()

    def _find_init(self) -> int:
        wait = threading.Event()
        # Only the child that has become systemd: nspawn's first child is a helper that execs or exits, and
        # under load pgrep caught it (nsenter into a dead PID then showed an empty unit for minutes).
        for _ in range(300):
            children = subprocess.run(["pgrep", "-x", "-P", str(self.proc.pid), "systemd"], capture_output=True,
                                      text=True).stdout
            if children.split():
                return int(children.split()[0])
            if self.proc.poll() is not None or wait.wait(0.1):
                break
        pytest.skip("systemd-nspawn did not boot a container here")

    def run(self, *cmd: str) -> str:
        return subprocess.run(["nsenter", "-t", str(self.init), "-a", *cmd], capture_output=True, text=True,
                              check=False).stdout

    def unit(self) -> dict[str, str]:
        out = self.run("systemctl", "show", "edge-agent", "-p", "ActiveState", "-p", "StatusText", "-p",
                       "NRestarts", "-p", "MainPID", "-p", "Result")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_unit(self, pred: object, timeout: float, what: str) -> dict[str, str]:
        wait, state = threading.Event(), {}
        for _ in range(int(timeout / 0.5)):
            state = self.unit()
            if pred(state):  # type: ignore[operator]
                return state
            wait.wait(0.5)
        journal = self.run("journalctl", "-u", "edge-agent", "--no-pager", "-n", "30")
        raise AssertionError(f"{what}: unit is {state}\n{journal}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn shuts the container down cleanly
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def container(own_broker: Broker, bundle: Path, media: Path, tmp_path: Path) -> Iterator[tuple[Container, Path]]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    tree = ensure_tree()
    prepare(tree, own_broker, media)
    seed = tmp_path / "bundle"
    shutil.copytree(bundle, seed)
    cams = tmp_path / "media"
    cams.mkdir()
    shutil.copy(media / "video_640x480.mp4", cams / "video.mp4")
    for path in (seed, cams, *seed.rglob("*"), *cams.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the dynamic user reads them
    tmp_path.chmod(0o755)
    box = Container(tree, {seed: "/opt/bundle", cams: "/opt/media"}, tmp_path / "nspawn.log")
    yield box, cams
    box.stop()


def test_unit_boots_reports_and_restarts(container: tuple[Container, Path], own_broker: Broker) -> None:
    box, cams = container
    rec = Recorder(own_broker.port, ["edge/#"], client_id="nspawn-rec")
    try:
        up = box.wait_unit(lambda u: u.get("ActiveState") == "active" and "efficientnet-lite0 v1 on" in
                           u.get("StatusText", ""), 180, "start")
        assert up["NRestarts"] == "0"
        rec.wait_for(lambda t, d: t == f"edge/{DEVICE}/status" and d["state"] == "online", 30)
        rec.wait_for(lambda t, d: t == f"edge/{DEVICE}/telemetry" and d["fps"] > 1, 30)

        # Frames stop: no WATCHDOG=1 any more, so systemd kills and restarts the agent.
        (cams / "video.mp4").rename(cams / "video.gone")
        box.wait_unit(lambda u: int(u.get("NRestarts", "0")) >= 1, 90, "watchdog restart")
        assert "Watchdog timeout" in box.run("journalctl", "-u", "edge-agent", "--no-pager")
        (cams / "video.gone").rename(cams / "video.mp4")
        box.wait_unit(lambda u: u.get("ActiveState") == "active" and "v1 on" in u.get("StatusText", ""), 120,
                      "back after the watchdog")

        # A crash: Restart=on-failure brings it back.
        before = int(box.unit()["NRestarts"])
        main_pid = box.unit()["MainPID"]
        box.run("/bin/sh", "-c", f"kill -9 {int(main_pid)}")  # the shell's kill: minbase has no procps
        box.wait_unit(lambda u: int(u.get("NRestarts", "0")) > before and u.get("ActiveState") == "active"
                      and "v1 on" in u.get("StatusText", ""), 120, "crash restart")
    finally:
        box.stop()
        rec.close()
