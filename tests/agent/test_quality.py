"""Quality telemetry: the signals each task gives, the tracker's interval figures and drift against its
reference, the low-confidence samples' rate limit and size cap, and on a real agent both arriving."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.config import QualityConfig
from agent.reporting.quality import QualityTracker, js_distance
from agent.reporting.samples import Samples
from fleet.messages import ModelRef, QualitySample
from runtimes.tasks import ClassifyAnswer, DetectAnswer, Detection, SegmentAnswer
from runtimes.tasks.quality import Signals, signals
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent


def _box(label: str, score: float) -> Detection:
    return Detection(label=label, score=score, box=[0, 0, 10, 10])


def test_each_task_says_what_it_can_about_certainty() -> None:
    assert signals(ClassifyAnswer(top=[("cat", 0.7), ("dog", 0.2)])) == Signals(0.7, [0.7], ["cat"])
    assert signals(DetectAnswer(detections=[_box("a", 0.3), _box("b", 0.9)])) == Signals(0.9, [0.3, 0.9], ["a", "b"])
    assert signals(DetectAnswer(detections=[])).confidence is None  # an empty scene says nothing
    assert signals(SegmentAnswer(coverage={"road": 0.6, "car": 0.0})) == Signals(None, [], ["road"])


def test_interval_figures_and_drift_against_the_reference() -> None:
    q = QualityTracker(QualityConfig(reference_s=10, low_confidence=0.5))
    for t in range(10):  # the first 10 s: the reference, sure of cats
        q.observe("cam0", "d1", signals(ClassifyAnswer(top=[("cat", 0.95)])), now=float(t))
    first = q.take("cam0", now=9.5)
    assert first is not None and first.frames == 10 and first.confidence_hist[9] == 10
    assert first.classes == {"cat": 1.0} and first.low_confidence_share == 0 and first.drift is None
    for t in range(10, 20):  # then unsure, and of dogs half the time
        label = "dog" if t % 2 else "cat"
        q.observe("cam0", "d1", signals(ClassifyAnswer(top=[(label, 0.35)])), now=float(t))
    later = q.take("cam0", now=20.0)
    assert later is not None and later.low_confidence_share == 1.0 and later.classes == {"dog": 0.5, "cat": 0.5}
    assert later.drift == pytest.approx(1.0) and later.class_drift is not None and 0.3 < later.class_drift < 0.8
    assert later.reference_frames == 10
    q.observe("cam0", "d2", signals(ClassifyAnswer(top=[("cat", 0.35)])), now=21.0)  # another model: start over
    fresh = q.take("cam0", now=22.0)
    assert fresh is not None and fresh.drift is None and fresh.reference_frames == 1


def test_js_distance_bounds() -> None:
    assert js_distance([5, 5], [10, 10]) == 0.0
    assert js_distance([1, 0], [0, 1]) == 1.0
    assert js_distance([0, 0], [1, 1]) is None


def test_samples_are_off_by_default_rate_limited_and_capped() -> None:
    sent: list[tuple[str, bytes]] = []
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)  # noise: a big JPEG
    unsure, answer = Signals(0.2, [0.2], ["cat"]), ClassifyAnswer(top=[("cat", 0.2)])
    model = ModelRef(name="m", version=1, digest="0" * 64)
    off = Samples("d", QualityConfig(), lambda c, p: sent.append((c, p)))
    assert not off.offer("cam0", unsure, answer, frame, model)
    on = Samples("d", QualityConfig(samples=True, sample_max_bytes=400_000), lambda c, p: sent.append((c, p)))
    assert on.offer("cam0", unsure, answer, frame, model)
    assert not on.offer("cam0", unsure, answer, frame, model)  # within the interval
    assert not on.offer("cam1", Signals(0.9, [0.9], ["cat"]), answer, frame, model)  # sure: not a sample
    doc = QualitySample.model_validate_json(sent[0][1])
    jpeg = cv2.imdecode(np.frombuffer(base64.b64decode(doc.jpeg_b64), np.uint8), cv2.IMREAD_COLOR)
    assert doc.confidence == 0.2 and doc.answer["top"][0][0] == "cat" and jpeg.shape[1] == 640
    tiny = Samples("d", QualityConfig(samples=True, sample_max_bytes=1024), lambda c, p: sent.append((c, p)))
    assert not tiny.offer("cam0", unsure, answer, frame, model)  # noise does not fit in 1 kB at any setting


QUALITY = {**FAST, "EDGE_AGENT__QUALITY__SAMPLES": "true", "EDGE_AGENT__QUALITY__LOW_CONFIDENCE": "1.0",
           "EDGE_AGENT__QUALITY__SAMPLE_INTERVAL_S": "1", "EDGE_AGENT__QUALITY__REFERENCE_S": "3"}


@pytest.mark.slow
def test_quality_telemetry_and_samples_arrive(own_broker: Broker, recorder: Recorder, bundle_v2: Path,
                                              media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle_v2, media, tmp_path / "state", "q1", env=QUALITY)
    try:
        tel = recorder.wait_for(lambda t, d: t == "edge/q1/telemetry" and d["cameras"]["cam0"].get("quality")
                                is not None and d["cameras"]["cam0"]["quality"]["drift"] is not None, 90)
        quality = tel["cameras"]["cam0"]["quality"]
        assert sum(quality["confidence_hist"]) == quality["frames"] > 0 and quality["classes"], quality
        assert quality["low_confidence_share"] == 1.0 and 0 <= quality["drift"] <= 1, quality
        sample = recorder.wait_for(lambda t, d: t == "edge/q1/samples/cam0", 30)
        doc = QualitySample.model_validate(sample)
        assert doc.model.version == 2 and base64.b64decode(doc.jpeg_b64)[:2] == b"\xff\xd8"
    finally:
        agent.kill()
