"""Two models' answers on one live frame, compared by the task's measure (the agent's shadow comparison)."""

from __future__ import annotations

import numpy as np
import pytest

from runtimes.tasks import (
    ClassifyAnswer,
    ClassifySpec,
    DetectAnswer,
    Detection,
    RawAnswer,
    RawSpec,
    SegmentAnswer,
    SegmentSpec,
)
from runtimes.tasks.compare import Run, agreement

SIZE = (8, 8)


def _cls(label: str) -> Run:
    return Run(ClassifySpec(output="y"), {"y": np.zeros((1, 3), np.float32)}, SIZE,
               ClassifyAnswer(top=[(label, 0.9), ("other", 0.1)]))


def _det(*boxes: tuple[str, list[float]]) -> Run:
    found = [Detection(label=lab, score=0.9, box=box) for lab, box in boxes]
    return Run(ClassifySpec(output="y"), {}, SIZE, DetectAnswer(detections=found))


def test_classify_compares_the_top_label_not_the_index() -> None:
    assert agreement(_cls("cat"), _cls("cat")) == 1.0
    assert agreement(_cls("cat"), _cls("dog")) == 0.0


@pytest.mark.parametrize(("ref", "cand", "want"), [
    ([], [], 1.0),
    ([("face", [0, 0, 10, 10])], [("face", [1, 1, 10, 10])], 1.0),
    ([("face", [0, 0, 10, 10]), ("face", [50, 50, 60, 60])], [("face", [0, 0, 10, 10])], 2 / 3),
    ([("face", [0, 0, 10, 10])], [("cat", [0, 0, 10, 10])], 0.0),
    ([("face", [0, 0, 10, 10])], [("face", [20, 20, 30, 30])], 0.0),
])
def test_detect_matches_boxes_by_label_and_iou(ref: list[tuple[str, list[float]]],
                                               cand: list[tuple[str, list[float]]], want: float) -> None:
    assert agreement(_det(*ref), _det(*cand)) == pytest.approx(want)


def test_segment_uses_mask_iou_on_same_shapes_and_class_shares_otherwise() -> None:
    spec = SegmentSpec(output="m", activation="none")
    a = np.zeros((1, 1, 4, 4), np.float32)
    a[..., :2] = 1.0
    b = a.copy()
    b[..., 1] = 0.0
    iou = agreement(Run(spec, {"m": a}, SIZE, SegmentAnswer(coverage={})),
                    Run(spec, {"m": b}, SIZE, SegmentAnswer(coverage={})))
    assert iou == pytest.approx(0.5)
    other = Run(spec, {"m": np.zeros((1, 1, 2, 2), np.float32)}, SIZE,
                SegmentAnswer(coverage={"background": 0.75, "person": 0.25}))
    mine = Run(spec, {"m": a}, SIZE, SegmentAnswer(coverage={"background": 0.5, "person": 0.5}))
    assert agreement(mine, other) == pytest.approx(0.75)


def test_raw_is_cosine_on_same_shapes_and_not_comparable_otherwise() -> None:
    spec = RawSpec(outputs=["o"])
    x = np.arange(1, 7, dtype=np.float32).reshape(1, 6)
    same = agreement(Run(spec, {"o": x}, SIZE, RawAnswer(outputs=[])), Run(spec, {"o": x * 2}, SIZE,
                                                                            RawAnswer(outputs=[])))
    assert same == pytest.approx(1.0)
    assert agreement(Run(spec, {"o": x}, SIZE, RawAnswer(outputs=[])),
                     Run(spec, {"o": x[:, :3]}, SIZE, RawAnswer(outputs=[]))) is None
