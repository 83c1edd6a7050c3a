"""Faults on real processes: the broker killed mid-transfer, a full disk while staging, the wall clock jumping.
Each ends with a model serving, status telling the truth and no acknowledged telemetry lost."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet.transfer import pack
from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.tmpfs import tmpfs
from tests.support.updates import publish_partial, serving, wait_chunks

runner = CliRunner()


class Sequences:
    """A durable subscriber (persistent session, QoS 1): what the broker acknowledged reaches it, even
    across a broker restart, so a gap in the telemetry sequence is a real loss."""

    def __init__(self, port: int, device: str) -> None:
        self.seqs: list[int] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"seq-{device}", clean_session=False)
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(f"edge/{device}/telemetry", 1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = lambda _c, _u, m: self.seqs.append(json.loads(m.payload)["seq"])
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            raise AssertionError("telemetry listener never subscribed")

    def assert_none_lost(self) -> None:
        got = sorted(set(self.seqs))
        missing = sorted(set(range(got[0], got[-1] + 1)) - set(got))
        assert not missing, f"telemetry lost: {missing[:20]} of {got[0]}..{got[-1]}"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def crashable_broker(tmp_path: Path) -> Iterator[Broker]:
    """Persistence written every second, as a production broker would be set up to survive a crash."""
    b = Broker(free_port(), tmp_path / "mosquitto", extra_config="autosave_interval 1\n").start()
    yield b
    b.kill()


def test_broker_killed_during_a_transfer(crashable_broker: Broker, bundle: Path, bundle_v2: Path, media: Path,
                                         tmp_path: Path) -> None:
    broker = crashable_broker
    rec, seqs = Recorder(broker.port, ["edge/#"]), Sequences(broker.port, "bk1")
    agent = start_agent(broker, bundle, media, tmp_path / "state", "bk1", env=FAST)
    try:
        serving(rec, "bk1", 1)
        total = len(pack(bundle_v2).manifest.chunk_sha256)
        publish_partial(broker, bundle_v2, "bk1", total // 2)
        wait_chunks(tmp_path / "state" / "store" / "incoming", total // 2)
        threading.Event().wait(1.5)  # one autosave: the retained chunks are on the broker's disk
        broker.kill()
        threading.Event().wait(3.0)  # the agent keeps serving v1 and keeps telemetry in its outbox
        assert agent.poll() is None
        broker.start()
        publish_partial(broker, bundle_v2, "bk1", None)  # the operator's push completes
        final = serving(rec, "bk1", 2, 120)
        assert final["update_phase"] == "committed"
        last = max(d["seq"] for d in rec.of("bk1/telemetry"))
        rec.wait_for(lambda t, d: t == "edge/bk1/telemetry" and d["seq"] >= last + 2, 20)
    finally:
        agent.kill()
        rec.close()
        seqs.close()
    seqs.assert_none_lost()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 48 MiB tmpfs: room for the agent's state and the admission check of a 19 MB bundle (twice its size)."""
    with tmpfs(tmp_path / "small", "48m") as mount:
        yield mount
        for log in mount.glob("agent-*.log"):  # readable after the unmount
            shutil.copy(log, tmp_path / log.name)


def test_disk_full_during_staging(own_broker: Broker, recorder: Recorder, small_disk: Path, bundle: Path,
                                  bundle_v2: Path, media: Path) -> None:
    # The admission check would refuse up front (it wants twice the bundle free): fill the disk after it.
    agent = start_agent(own_broker, bundle, media, small_disk / "state", "df1", env=FAST)
    filler = small_disk / "filler"
    try:
        serving(recorder, "df1", 1)
        total = len(pack(bundle_v2).manifest.chunk_sha256)
        publish_partial(own_broker, bundle_v2, "df1", total // 2)
        wait_chunks(small_disk / "state" / "store" / "incoming", total // 2)
        free = shutil.disk_usage(small_disk).free
        filler.write_bytes(b"\0" * max(free - (4 << 20), 0))  # 4 MiB left: less than the rest of the chunks
        publish_partial(own_broker, bundle_v2, "df1", None)
        refused = recorder.wait_for(lambda t, d: t == "edge/df1/events" and d["data"].get("phase") == "refused",
                                    90)
        assert "No space left" in refused["message"] or "disk" in refused["message"], refused
        filler.unlink()
        # Still serving v1, honestly reported, and telemetry flows again once there is room.
        recorder.wait_for(lambda t, d: t == "edge/df1/status" and d["state"] == "online"
                          and d["update_phase"] == "refused" and d["model"]["version"] == 1, 30)
        seen = len(recorder.of("df1/telemetry"))
        recorder.wait_for(lambda t, _d: t == "edge/df1/telemetry" and len(recorder.of("df1/telemetry")) > seen + 1,
                          20)
        assert agent.poll() is None
    finally:
        agent.kill()


def _faketime_lib() -> str | None:
    for path in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"):
        if os.path.exists(path):
            return path
    return None


@pytest.mark.skipif(_faketime_lib() is None, reason="libfaketime not installed (the test command installs it)")
def test_clock_jump(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path, tmp_path: Path) -> None:
    """The wall clock steps a day forward, then an hour back (NTP after a dead RTC battery); the monotonic
    clock does not. Telemetry, results and the watchdog must keep going."""
    clock = tmp_path / "faketime"
    clock.write_text("+0\n")
    env = {**FAST, "LD_PRELOAD": str(_faketime_lib()), "FAKETIME_TIMESTAMP_FILE": str(clock),
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "ck1", env=env)
    try:
        serving(recorder, "ck1", 1)
        for jump in ("+1d", "-1h"):
            clock.write_text(f"{jump}\n")
            seen = len(recorder.of("ck1/telemetry"))
            recorder.wait_for(lambda t, _d, seen=seen: t == "edge/ck1/telemetry"
                              and len(recorder.of("ck1/telemetry")) >= seen + 3, 20)
            recorder.wait_for(lambda t, _d: t == "edge/ck1/results", 10)
        seqs = [d["seq"] for d in recorder.of("ck1/telemetry")]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert recorder.of("ck1/telemetry")[-1]["fps"] > 1
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        agent.kill()


def test_gc_clears_only_undesired_bundles(own_broker: Broker, bundle: Path, bundle_v2: Path) -> None:
    kept = publish_partial(own_broker, bundle_v2, "gc1", None)  # desired by gc1
    stale = pack(bundle)
    publish_partial(own_broker, bundle, "gc2", 3)
    # gc2 now desires something else: its old bundle is garbage.
    publish_partial(own_broker, bundle_v2, "gc2", 0)
    result = runner.invoke(app, ["gc", "--broker", own_broker.url, "--wait", "1"])
    assert result.exit_code == 0, result.output
    assert "cleared 1 bundle" in result.output
    left = Recorder(own_broker.port, ["edge/bundles/#"], client_id="after-gc")
    try:
        left.wait_for(lambda t, _d: t.startswith(f"edge/bundles/{kept.digest}/"), 10)
        threading.Event().wait(1.0)
        assert not [t for t, _d, _r in left.messages if stale.digest in t]
    finally:
        left.close()
