"""Push → fetch → verify → check → switch → soak → commit or roll back, with a real agent and broker."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import keys
from edgectl.app import app
from fleet.transfer import pack
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.updates import publish_partial, push, serving, wait_chunks

runner = CliRunner()


def resign(root: Path, key: keys.SigningKey) -> None:
    """Re-hash and re-sign a bundle after editing it (a well-formed bundle with a bad artifact)."""
    from runtimes import signing
    from runtimes.bundle import file_entry

    doc = json.loads((root / "manifest.json").read_text())
    doc["files"] = [file_entry(root, f["path"]).model_dump() for f in doc["files"]]
    data = json.dumps(doc).encode()
    (root / "manifest.json").write_bytes(data)
    (root / "manifest.sig").write_bytes(signing.sign(data, key.private, key.public_pem))


def test_push_commits_and_survives_a_restart(own_broker: Broker, recorder: Recorder, bundle: Path,
                                            bundle_v2: Path, media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u1", env=FAST)
    try:
        serving(recorder, "u1", 1)
        results = push(own_broker, bundle_v2, "u1")
        assert results[0]["result"] == "committed", results
        recorder.wait_for(lambda t, d: t == "edge/u1/events" and d["data"].get("phase") == "committed", 10)
        phases = [d["data"]["phase"] for d in recorder.of("u1/events") if d["kind"] == "update"]
        for phase in ("fetching", "verifying", "checking", "switching", "soaking", "committed"):
            assert phase in phases
        serving(recorder, "u1", 2, 10)
        again = push(own_broker, bundle_v2, "u1", "--timeout", "20")  # what it serves: answered, not waited out
        assert again[0]["result"] == "committed" and "already serving" in str(again[0]["reason"]), again
        agent.terminate()
        agent.wait(20)
        agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u1", env=FAST)
        serving(recorder, "u1", 2)  # the store's committed model wins over the --bundle seed
    finally:
        agent.kill()


def test_downgrade_is_refused(own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path, media: Path,
                              tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle_v2, media, tmp_path / "state", "u2", env=FAST)
    try:
        serving(recorder, "u2", 2)
        results = push(own_broker, bundle, "u2")
        assert results[0]["result"] == "refused" and "older" in str(results[0]["reason"])
        assert agent.poll() is None
    finally:
        agent.kill()


def test_unknown_key_is_refused(own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path,
                                media: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(bundle_v2, other)
    resign(other, keys.init(tmp_path / "otherkey"))
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u3", env=FAST)
    try:
        serving(recorder, "u3", 1)
        results = push(own_broker, other, "u3")
        assert results[0]["result"] == "refused" and "unknown key" in str(results[0]["reason"])
        serving(recorder, "u3", 1, 10)
        assert not list((tmp_path / "state" / "store" / "incoming").iterdir())  # nothing half-staged left
    finally:
        agent.kill()


def test_golden_failure_on_the_device_is_refused(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                 bundle_v2: Path, media: Path, tmp_path: Path) -> None:
    import numpy as np

    bad = tmp_path / "bad"
    shutil.copytree(bundle_v2, bad)
    with np.load(bad / "golden" / "reference.npz") as npz:
        ref = [npz[k] for k in npz.files]
    np.savez(bad / "golden" / "reference.npz", ref[0][:, ::-1].copy())  # the device will disagree with this
    resign(bad, keys.load())
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u4", env=FAST)
    try:
        serving(recorder, "u4", 1)
        results = push(own_broker, bad, "u4")
        assert results[0]["result"] == "refused" and "golden" in str(results[0]["reason"])
        serving(recorder, "u4", 1, 10)
    finally:
        agent.kill()


def test_tampered_chunk_is_refused(own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path,
                                   media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u5", env=FAST)
    try:
        serving(recorder, "u5", 1)
        publish_partial(own_broker, bundle_v2, "u5", None, tamper=3)
        event = recorder.wait_for(lambda t, d: t == "edge/u5/events" and d["data"].get("phase") == "refused", 60)
        assert "chunk 3" in event["message"] and "sha256" in event["message"]
        serving(recorder, "u5", 1, 10)
    finally:
        agent.kill()


def test_cut_transfer_resumes_with_the_missing_chunks(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                      bundle_v2: Path, media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u6", env=FAST)
    try:
        serving(recorder, "u6", 1)
        total = len(pack(bundle_v2).manifest.chunk_sha256)
        half = total // 2
        publish_partial(own_broker, bundle_v2, "u6", half)
        recorder.wait_for(lambda t, d: t == "edge/u6/events" and d["data"].get("missing") == total, 60)
        store = tmp_path / "state" / "store" / "incoming"
        wait_chunks(store, half)
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        publish_partial(own_broker, bundle_v2, "u6", None)  # the rest arrives while the device is down
        agent = start_agent(own_broker, bundle, media, tmp_path / "state", "u6", env=FAST)
        resumed = recorder.wait_for(lambda t, d: t == "edge/u6/events" and d["data"].get("have") == half, 90)
        assert resumed["data"]["missing"] == total - half
        serving(recorder, "u6", 2, 90)
    finally:
        agent.kill()


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["fetching", "verifying", "checking", "switching", "soaking"])
def test_kill_9_in_every_phase_ends_with_a_serving_model(phase: str, own_broker: Broker, recorder: Recorder,
                                                        bundle: Path, bundle_v2: Path, media: Path,
                                                        tmp_path: Path) -> None:
    env = {**FAST, "EDGE_AGENT__THRESHOLDS__SOAK_S": "5"}
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "k1", env=env)
    try:
        serving(recorder, "k1", 1)
        assert runner.invoke(app, ["push", str(bundle_v2), "--device", "k1", "--broker", own_broker.url,
                                   "--no-wait"]).exit_code == 0
        recorder.wait_for(lambda t, d: t == "edge/k1/events" and d["data"].get("phase") == phase, 90)
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        agent = start_agent(own_broker, bundle, media, tmp_path / "state", "k1", env=env)
        # Before commit the restart either resumes (transfer phases) or rolls back; both end serving.
        final = recorder.wait_for(lambda t, d: t == "edge/k1/status" and d["state"] == "online"
                                  and d.get("update_phase") in ("committed", "rolled_back"), 120)
        # The kill lands at or just after the phase's event: transfer phases resume and commit, later ones
        # roll back; either way the status must say which model serves.
        events = [(d["data"].get("phase"), d["message"]) for d in recorder.of("k1/events")]
        assert final["model"]["version"] == (2 if final["update_phase"] == "committed" else 1), (final, events)
        if phase in ("switching", "soaking"):
            assert final["update_phase"] == "rolled_back", events
    finally:
        agent.kill()
