"""The agent survives its own environment: freezes, damaged state files, a read-only state directory,
retained and flooded commands, a push refused and pushed again, a committed bundle damaged on disk. Each on a
real `edge-agent` process with the real bundle and a real broker; each asserts the agent keeps serving (or
exits non-zero for systemd), prints no traceback, says what happened in an event, and status tells the truth."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.tmpfs import tmpfs
from tests.support.updates import publish_partial, push, serving, wait_chunks

pytestmark = [pytest.mark.slow, pytest.mark.cold_devices]


def _no_traceback(state: Path, device: str) -> None:
    log = (state.parent / f"agent-{device}.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def _stop(agent: subprocess.Popen[bytes]) -> int:
    agent.terminate()
    return agent.wait(30)


def _events(rec: Recorder, device: str, kind: str) -> list[dict[str, object]]:
    return [d for d in rec.of(f"{device}/events") if d.get("kind") == kind]


def _telemetry_after(rec: Recorder, device: str, seq: int, timeout: float = 60) -> dict[str, object]:
    return rec.wait_for(lambda t, d: t == f"edge/{device}/telemetry" and d["seq"] > seq, timeout)


def _last_seq(rec: Recorder, device: str) -> int:
    """The newest telemetry sequence number seen, waiting for the first one if none has come yet."""
    seen = rec.of(f"{device}/telemetry")
    return int(seen[-1]["seq"]) if seen else int(_telemetry_after(rec, device, -1)["seq"])  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def warm_state(tmp_path_factory: pytest.TempPathFactory, bundle: Path, media: Path, broker: Broker) -> Path:
    """A state directory after one clean run: selection cached, outbox made."""
    state = tmp_path_factory.mktemp("warm") / "state"
    rec = Recorder(broker.port, ["edge/warm/#"], "warm-rec")
    agent = start_agent(broker, bundle, media, state, "warm", env=FAST)
    try:
        serving(rec, "warm", 1)
        # Its own selection, not the fast start's safe candidate: the cached decision is part of the state.
        rec.wait_for(lambda t, d: t == "edge/warm/events" and d["kind"] == "selection"
                     and not d["data"].get("provisional"), 180)
        assert _stop(agent) == 0
    finally:
        agent.kill()
        rec.close()
    return state


def _copy_state(warm: Path, dst: Path) -> Path:
    shutil.copytree(warm, dst)
    return dst


def test_freezes_of_1_3_and_40_s_do_not_stop_the_agent(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                        media: Path, warm_state: Path, tmp_path: Path) -> None:
    """SIGSTOP/SIGCONT used to end the agent with exit 0 (a garbage siginfo taken for a stop request)."""
    state = _copy_state(warm_state, tmp_path / "state")
    agent = start_agent(own_broker, bundle, media, state, "fz", env=FAST)
    try:
        serving(recorder, "fz", 1)
        for seconds in (1, 3, 40):
            last = _last_seq(recorder, "fz")
            agent.send_signal(signal.SIGSTOP)
            threading.Event().wait(seconds)
            agent.send_signal(signal.SIGCONT)
            after = _telemetry_after(recorder, "fz", last)
            assert agent.poll() is None, f"the agent exited after a {seconds} s freeze"
            assert after["fps"] > 0 or seconds == 40  # type: ignore[index]
        serving(recorder, "fz", 1, 60)  # back online after the broker dropped it during the 40 s freeze
        assert _stop(agent) == 0
        _no_traceback(state, "fz")
    finally:
        agent.kill()


DAMAGE = {
    "empty": {"current.json": b"", "update.json": b"", "selection": b"", "outbox.db": b"\x00" * 10},
    "list": {"current.json": b"[]", "update.json": b"[]", "selection": b"[]", "outbox.db": b"[]"},
    "wrong-shape": {"current.json": b'{"current": 5}', "update.json": b'{"phase": "fetching", "desired": {"x": 1}}',
                    "selection": b'{"selected": 1}', "outbox.db": b'{"a": 1}'},
    "garbage": {name: os.urandom(300) for name in ("current.json", "update.json", "selection", "outbox.db")},
}


def _damage(state: Path, damage: dict[str, bytes]) -> list[Path]:
    files = {"current.json": state / "store" / "current.json", "update.json": state / "store" / "update.json",
             "outbox.db": state / "outbox.db", "selection": next((state / "selection").glob("*.json"))}
    for name, path in files.items():
        for extra in path.parent.glob(path.name + "-*"):  # sqlite's -wal and -shm beside the outbox
            extra.unlink()
        path.write_bytes(damage[name])
    return [files["current.json"], files["update.json"]]


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_state_files_at_start(kind: str, own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                                      warm_state: Path, tmp_path: Path) -> None:
    state = _copy_state(warm_state, tmp_path / "state")
    named = _damage(state, DAMAGE[kind])
    device = f"dmg-{kind}"
    agent = start_agent(own_broker, bundle, media, state, device, env=FAST)
    try:
        serving(recorder, device, 1)
        for path in named:  # every damaged store file is named in an event, and moved aside
            recorder.wait_for(lambda t, d, p=path: t == f"edge/{device}/events" and d["data"].get("file") == str(p))
            assert path.with_name(path.name + ".damaged").is_file()
        if kind != "empty":  # sqlite takes an all-zero file for a new database
            recorder.wait_for(lambda t, d: t == f"edge/{device}/events" and d["data"].get("fault") == "outbox"
                              and "outbox.db" in d["message"])
        last = _last_seq(recorder, device)
        _telemetry_after(recorder, device, last)
        assert _stop(agent) == 0
        _no_traceback(state, device)
    finally:
        agent.kill()


@pytest.fixture
def read_only_state(tmp_path: Path, warm_state: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "state", "64m") as mount:
        shutil.copytree(warm_state, mount, dirs_exist_ok=True)
        yield mount


def _remount(mount: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)


def test_read_only_state_dir_serves_and_refuses_updates_with_the_path(
        own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path, media: Path,
        read_only_state: Path) -> None:
    state = read_only_state
    _remount(state, "ro")
    agent = start_agent(own_broker, bundle, media, state, "ro", env=FAST)
    try:
        serving(recorder, "ro", 1)
        recorder.wait_for(lambda t, d: t == "edge/ro/events" and d["data"].get("fault") == "outbox"
                          and "in memory" in d["message"])
        result = push(own_broker, bundle_v2, "ro")[0]
        assert result["result"] == "refused" and "Read-only file system" in str(result["reason"]), result
        serving(recorder, "ro", 1)
        assert _stop(agent) == 0
        _no_traceback(state, "ro")
    finally:
        agent.kill()
        _remount(state, "rw")


def test_state_files_damaged_while_serving(own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path,
                                          media: Path, warm_state: Path, tmp_path: Path) -> None:
    """The update record and the pointer damaged under a running agent: the next update reads them, says so,
    and commits. (A read-only remount under a running agent is refused by the kernel while the outbox is open
    for writing; failing writes while serving are the full-disk test in tests/fleet/test_faults.py.)"""
    state = _copy_state(warm_state, tmp_path / "state")
    agent = start_agent(own_broker, bundle, media, state, "dws", env=FAST)
    try:
        serving(recorder, "dws", 1)
        (state / "store" / "update.json").write_bytes(b'{"phase": "soaking", "desired": [')
        (state / "store" / "current.json").write_bytes(b"[]")
        result = push(own_broker, bundle_v2, "dws")[0]
        assert result["result"] == "committed", result
        for name in ("update.json", "current.json"):
            recorder.wait_for(lambda t, d, n=name: t == "edge/dws/events" and d["data"].get("file", "").endswith(n))
        assert json.loads((state / "store" / "current.json").read_text())["current"]
        assert _stop(agent) == 0
        _no_traceback(state, "dws")
    finally:
        agent.kill()


def _client(port: int) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flood")
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_retained_and_flooded_commands(own_broker: Broker, recorder: Recorder, bundle: Path, media: Path,
                                       warm_state: Path, tmp_path: Path) -> None:
    """A retained restart used to restart-loop the device; a flood became thousands of durable events."""
    state = _copy_state(warm_state, tmp_path / "state")
    c = _client(own_broker.port)
    c.publish("edge/cm/cmd/restart", json.dumps({"request_id": "r1"}), qos=1, retain=True).wait_for_publish(10)
    agent = start_agent(own_broker, bundle, media, state, "cm", env=FAST)
    try:
        serving(recorder, "cm", 1)
        recorder.wait_for(lambda t, d: t == "edge/cm/events" and "retained command" in d.get("message", ""))
        threading.Event().wait(3)
        assert agent.poll() is None, "a retained restart command restarted the agent"
        c.publish("edge/cm/cmd/logs", b'{"request_id": "big", "args": {"lines": 1e999}}', qos=1)
        reply = recorder.wait_for(lambda t, d: t == "edge/cm/reply/big", 10)
        assert reply["ok"] is False and "lines" in reply["error"]
        tick = threading.Event()
        for _ in range(30):  # about 1,000 garbage messages a second for 3 s
            for i in range(100):
                c.publish("edge/cm/cmd/restart", b"\xff garbage %d" % i, qos=0)
            tick.wait(0.1)
        last = _last_seq(recorder, "cm")
        after = _telemetry_after(recorder, "cm", last + 3)
        assert after["outbox_depth"] < 100, after
        rejected = _events(recorder, "cm", "rejected")
        assert 1 <= len(rejected) <= 40, len(rejected)
        recorder.wait_for(lambda t, d: t == "edge/cm/events" and d["data"].get("suppressed", 0) > 0)
        c.publish("edge/cm/cmd/restart", b"", qos=1, retain=True).wait_for_publish(10)
        assert agent.poll() is None
        assert _stop(agent) == 0
        _no_traceback(state, "cm")
    finally:
        agent.kill()
        c.loop_stop()
        c.disconnect()


def test_refused_push_is_retried_and_damaged_commits_are_fetched_again(
        own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path, media: Path, warm_state: Path,
        tmp_path: Path) -> None:
    state = _copy_state(warm_state, tmp_path / "state")
    env = {**FAST, "EDGE_AGENT__THRESHOLDS__FETCH_STALL_S": "3"}
    agent = start_agent(own_broker, bundle, media, state, "rp", env=env)
    try:
        serving(recorder, "rp", 1)
        publish_partial(own_broker, bundle_v2, "rp", upto=30)  # the rest never comes: a stalled fetch
        wait_chunks(state / "store" / "incoming", 30)
        recorder.wait_for(lambda t, d: t == "edge/rp/events" and d["data"].get("phase") == "refused")
        assert len(list((state / "store" / "incoming").glob("*/*.chunk"))) == 30  # kept for the next push
        result = push(own_broker, bundle_v2, "rp")[0]  # the same bundle, a new push
        assert result["result"] == "committed", result
        fetching = [d for d in _events(recorder, "rp", "update") if "already here" in d["message"]]
        assert fetching and fetching[-1]["data"]["have"] == 30
        assert _stop(agent) == 0

        committed = json.loads((state / "store" / "current.json").read_text())["current"]
        model = state / "store" / "bundles" / committed / "onnx-fp32" / "model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
        since = recorder.mark()
        agent = start_agent(own_broker, bundle, media, state, "rp", env=env)
        recorder.wait_for(lambda t, d: t == "edge/rp/status" and d["state"] == "degraded"
                          and "committed model does not serve" in (d.get("reason") or ""), 90, since)
        serving(recorder, "rp", 2, 120, since)  # the retained desired state brings v2 back, fetched afresh
        assert _stop(agent) == 0

        (state / "store" / "current.json").unlink()
        since = recorder.mark()
        agent = start_agent(own_broker, bundle, media, state, "rp", env=env)
        serving(recorder, "rp", 1, 120, since)  # the seed serves first
        serving(recorder, "rp", 2, 120, since)  # the pointer is gone: the retained desired state restores it
        assert _stop(agent) == 0
        _no_traceback(state, "rp")
    finally:
        agent.kill()
