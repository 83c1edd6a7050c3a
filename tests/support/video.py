"""Test videos made from photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def still_video(photo: Path, out: Path) -> np.ndarray:
    """A 2-second video of one photo at 640x480 (`out` an .avi), and its frame as a decoder returns it. Lossless
    (FFV1): every frame is the photo itself. With mp4v the P-frames differed from the first by up to 18 levels,
    enough to move a BlazeFace box by 16 px between a camera's frame and the test's copy."""
    frame = cv2.resize(cv2.imread(str(photo)), (640, 480))
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), 15, (640, 480))
    for _ in range(30):
        writer.write(frame)
    writer.release()
    cap = cv2.VideoCapture(str(out))
    ok, decoded = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"{out}: the still video does not decode")
    return np.asarray(decoded)
