"""Pipeline benchmark steps: decode + preprocess + infer + postprocess, as the camera loop runs them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtimes.model import LoadedModel


def _reader(source: Path) -> Callable[[], Any]:
    import cv2

    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise OSError(f"{source}: cannot open video for the pipeline benchmark")

    def read() -> Any:
        ok, frame = cap.read()
        if not ok:  # loop the file
            cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = cap.read()
        return frame

    return read


def pipeline_steps(models: dict[str, LoadedModel], source: Path) -> dict[str, Callable[[], None]]:
    def step(model: LoadedModel, read: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            outputs, tf = model.infer_frame(read())
            model.post.decode(outputs, 0, model.size, tf, [])
        return run

    return {key: step(model, _reader(source)) for key, model in models.items()}
