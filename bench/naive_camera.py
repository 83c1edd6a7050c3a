"""The naive deployment bench/cameras.py compares with: one process per camera, OpenCV reads the RTSP
stream, ONNX Runtime (FP32, default options) answers the newest frame every 1/RATE s. Prints one JSON line:
answers per second and the p95 glass-to-result (the stream's own timestamps, as the agent measures it).

    python bench/naive_camera.py URL MODEL.onnx RATE SECONDS
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from agent.video.capture import StreamClock


def preprocess(frame: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.resize(frame, (224, 224)), cv2.COLOR_BGR2RGB).astype(np.float32)
    return ((rgb - 127.0) / 128.0).transpose(2, 0, 1)[None]


def main() -> None:
    url, model, rate, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    cap, clock = cv2.VideoCapture(url, cv2.CAP_FFMPEG), StreamClock()
    glass: list[float] = []
    start = time.monotonic()
    next_at, warm = start, start + 5.0  # the first seconds are the server's preroll burst
    while time.monotonic() - start < seconds:
        ok, frame = cap.read()
        if not ok:
            break
        now = time.monotonic()
        at = clock.when(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000, now)
        if now >= next_at:
            session.run(None, {name: preprocess(frame)})
            next_at = max(next_at + 1.0 / rate, now)
            if now >= warm:
                glass.append((time.monotonic() - at) * 1000)
    span = max(time.monotonic() - warm, 1e-6)
    glass.sort()
    p95 = glass[int(0.95 * (len(glass) - 1))] if glass else float("inf")
    print(json.dumps({"fps": round(len(glass) / span, 2), "glass_p95_ms": round(p95, 1)}))


if __name__ == "__main__":
    main()
