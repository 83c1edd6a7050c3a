"""The agent serves every task: a real agent process on a camera of one still photo per model, its results
compared with the answer of the candidate it chose (artifact, runtime and settings, from its selection
event, run here) on the same decoded frame.
Which artifact wins depends on the machine's CPU, so the reference follows the agent's choice; the builder's
accuracy report already bounds every artifact against FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtimes.bundle import open_bundle
from runtimes.model import LoadedModel
from runtimes.tasks import Answer
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.video import still_video

pytestmark = pytest.mark.slow
CASES = {  # bundle fixture: the photo folder its still camera shows
    "face_bundle": "faces_val", "text_bundle": "text_val", "mesh_bundle": "facecrops_val",
    "orientation_bundle": "textlines_val"}


def _answer(bundle: Path, frame: np.ndarray, target: str, runtime: str, settings: dict[str, object]) -> Answer:
    b = open_bundle(bundle, allow_unsigned=True)
    art = b.manifest.artifact(target)
    model = LoadedModel.load(b.manifest.preprocess, b.manifest.postprocess, art, b.artifact_files(art),
                             runtime, settings)
    try:
        outputs, tf = model.infer_frame(frame)
        return model.post.decode(outputs, 0, model.size, tf, b.manifest.labels)
    finally:
        model.close()


def _matches(task: str, got: dict[str, object], want: dict[str, object]) -> None:
    if task == "classify":
        assert got["top"][0][0] == want["top"][0][0], (got, want)  # type: ignore[index]
    elif task == "detect":
        assert len(got["detections"]) == len(want["detections"]), (got, want)  # type: ignore[arg-type]
        for g, w in zip(got["detections"], want["detections"], strict=True):  # type: ignore[call-overload]
            assert g["label"] == w["label"] and np.allclose(g["box"], w["box"], atol=12), (g, w)
            assert len(g["keypoints"]) == len(w["keypoints"])
    elif task == "segment":
        for label, share in want["coverage"].items():  # type: ignore[attr-defined]
            assert abs(got["coverage"].get(label, 0.0) - share) < 0.05, (got, want)  # type: ignore[attr-defined]
    else:
        for g, w in zip(got["outputs"], want["outputs"], strict=True):  # type: ignore[call-overload]
            assert g["name"] == w["name"] and g["shape"] == w["shape"]
            assert abs(g["mean"] - w["mean"]) <= 0.1 * max(1.0, abs(w["max"] - w["min"])), (g, w)


@pytest.mark.parametrize("fixture", list(CASES))
def test_agent_serves_the_task(fixture: str, request: pytest.FixtureRequest, own_broker: Broker,
                               recorder: Recorder, media: Path, tmp_path: Path) -> None:
    bundle: Path = request.getfixturevalue(fixture)
    task = open_bundle(bundle).manifest.task
    photo = sorted((media / CASES[fixture]).iterdir())[3]
    frame = still_video(photo, tmp_path / "still.avi")
    device = f"task-{task}"
    agent = start_agent(own_broker, bundle, tmp_path, tmp_path / "state", device, env=FAST, source="still.avi")
    try:
        got = recorder.wait_for(lambda t, d: t == f"edge/{device}/results", 90)
        assert got["task"] == task
        chosen = recorder.wait_for(lambda t, d: t == f"edge/{device}/events" and d["kind"] == "selection", 30)
        sel = chosen["data"]["selected"]  # the artifact, runtime and settings (threads…) the agent serves with
        want = _answer(bundle, frame, sel["target"], sel["runtime"], sel["settings"]).model_dump(mode="json")
        _matches(task, got, want)
    finally:
        agent.terminate()
        agent.wait(30)
