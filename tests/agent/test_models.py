"""Two models on one device: a camera on the classifier, another on the face detector."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agent.config import AgentConfig
from edgectl.app import app
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent


def test_each_camera_is_served_by_its_own_model(own_broker: Broker, recorder: Recorder, bundle: Path,
                                               face_bundle: Path, media: Path, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(f'[models]\nfaces = "{face_bundle}"\n\n'
                      f'[[cameras]]\nid = "door"\nsource = "{media / "video_faces_640x480.mp4"}"\nmodel = "faces"\n\n'
                      f'[[cameras]]\nid = "shelf"\nsource = "{media / "video_640x480.mp4"}"\n')
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "mm1", "--config", str(config), env=FAST,
                       source=None)
    try:
        status = recorder.wait_for(lambda t, d: t == "edge/mm1/status" and d["state"] == "online"
                                   and bool(d.get("other_models")), 90)
        assert status["model"]["name"] == "efficientnet-lite0"
        assert status["other_models"][0]["name"] == "faces"
        assert status["other_models"][0]["model"]["name"] == "blazeface-short"
        faces = recorder.wait_for(lambda t, d: t == "edge/mm1/results" and d["camera"] == "door"
                                  and bool(d["detections"]), 30)
        assert faces["model"] == "blazeface-short" and faces["detections"][0]["label"] == "face"
        shelf = recorder.wait_for(lambda t, d: t == "edge/mm1/results" and d["camera"] == "shelf", 30)
        assert shelf["model"] == "efficientnet-lite0" and len(shelf["top"]) == 5
        tele = recorder.wait_for(lambda t, d: t == "edge/mm1/telemetry" and len(d["cameras"]) == 2, 30)
        assert tele["cameras"]["door"]["model"] == "faces" and tele["cameras"]["shelf"]["model"] == "default"
        rows = json.loads(CliRunner().invoke(app, ["status", "--broker", own_broker.url, "--json"]).stdout)
        row = next(r for r in rows if r["device"] == "mm1")
        assert row["other_models"][0]["model"] == "blazeface-short"
    finally:
        proc.terminate()
        proc.wait(30)


def test_push_updates_a_named_model_and_only_it(own_broker: Broker, recorder: Recorder, bundle: Path,
                                               face_bundle: Path, face_bundle_v2: Path, media: Path,
                                               tmp_path: Path) -> None:
    """`edgectl push --model faces`: the faces model goes through its own update (events name it, status shows
    its phase and then v2) while the default model keeps serving v1; a restart starts faces from its commit."""
    config = tmp_path / "agent.toml"
    config.write_text(f'[models]\nfaces = "{face_bundle}"\n\n'
                      f'[[cameras]]\nid = "door"\nsource = "{media / "video_faces_640x480.mp4"}"\nmodel = "faces"\n')
    start = lambda: start_agent(own_broker, bundle, media, tmp_path / "state", "mm2", "--config",  # noqa: E731
                                str(config), env=FAST, source=None)
    proc = start()
    try:
        recorder.wait_for(lambda t, d: t == "edge/mm2/status" and bool(d.get("other_models")), 90)
        result = CliRunner().invoke(app, ["push", str(face_bundle_v2), "--device", "mm2", "--model", "faces",
                                          "--broker", own_broker.url, "--timeout", "120", "--json"])
        assert json.loads(result.stdout)[0]["result"] == "committed", result.output
        updates = [d for d in recorder.of("mm2/events") if d["kind"] == "update"]
        assert updates and all(d["data"]["model"] == "faces" for d in updates)
        assert any(d.get("other_models") and d["other_models"][0]["update_phase"] == "soaking"
                   for d in recorder.of("mm2/status"))
        status = recorder.wait_for(lambda t, d: t == "edge/mm2/status" and bool(d.get("other_models"))
                                   and d["other_models"][0]["model"]["version"] == 2
                                   and d["other_models"][0]["update_phase"] is None, 10)
        assert status["model"]["version"] == 1
        assert (tmp_path / "state" / "store" / "models" / "faces" / "current.json").is_file()
        result = CliRunner().invoke(app, ["push", str(face_bundle_v2), "--device", "mm2", "--model", "cars",
                                          "--broker", own_broker.url, "--timeout", "30", "--json"])
        refused = json.loads(result.stdout)[0]
        assert refused["result"] == "refused" and "'cars' is not configured" in refused["reason"], result.output
        proc.terminate()
        proc.wait(30)
        proc = start()
        recorder.wait_for(lambda t, d: t == "edge/mm2/status" and d["state"] == "online"
                          and bool(d.get("other_models")) and d["other_models"][0]["model"]["version"] == 2
                          and d["ts"] > status["ts"], 90)
        faces = recorder.wait_for(lambda t, d: t == "edge/mm2/results" and bool(d["detections"]), 30)
        assert faces["model"] == "blazeface-short"
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_camera_bound_to_an_unknown_model_is_named(tmp_path: Path) -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="camera 'door': model 'faces'"):
        AgentConfig.model_validate({"cameras": [{"id": "door", "source": "0", "model": "faces"}]})
