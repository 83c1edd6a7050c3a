"""The latest answer of each camera, for the API: as JSON (the MQTT result payload's fields), as a stream of
server-sent events, and as a JPEG of the frame with its answer drawn."""

from __future__ import annotations

import threading
import time
from typing import Any

from runtimes.tasks import Answer

from ..errors import ApiError


class Latest:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._docs: dict[str, tuple[int, dict[str, Any], Answer, Any]] = {}  # camera → (seq, doc, answer, frame)

    def offer(self, camera: str, model: str, answer: Answer, latency_ms: float, frame: Any) -> None:
        doc = {"camera": camera, "model": model, "ts": time.time(), "latency_ms": round(latency_ms, 3),
               **answer.model_dump(mode="json")}
        with self._cond:
            seq = self._docs[camera][0] + 1 if camera in self._docs else 0
            self._docs[camera] = (seq, doc, answer, frame)
            self._cond.notify_all()

    def all(self) -> dict[str, dict[str, Any]]:
        with self._cond:
            return {cam: entry[1] for cam, entry in self._docs.items()}

    def result(self, camera: str) -> dict[str, Any]:
        with self._cond:
            return self._entry(camera)[1]

    def wait(self, camera: str, after: int, timeout: float) -> tuple[int, dict[str, Any] | None]:
        """The next answer after sequence `after`, or (after, None) when none came within the timeout."""
        with self._cond:
            self._cond.wait_for(lambda: camera in self._docs and self._docs[camera][0] > after, timeout)
            entry = self._docs.get(camera)
            return (entry[0], entry[1]) if entry is not None and entry[0] > after else (after, None)

    def snapshot(self, camera: str, quality: int = 85) -> bytes:
        import cv2

        with self._cond:
            _, _, answer, frame = self._entry(camera)
        if frame is None:
            raise ApiError(404, f"camera {camera}: no frame kept")
        image = draw(frame.copy(), answer)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ApiError(500, f"camera {camera}: the frame could not be encoded")
        return bytes(jpeg)

    def _entry(self, camera: str) -> tuple[int, dict[str, Any], Answer, Any]:
        if camera not in self._docs:
            raise ApiError(404, f"camera {camera!r}: no answer yet (cameras: {', '.join(self._docs) or 'none'})")
        return self._docs[camera]


def draw(image: Any, answer: Answer) -> Any:
    """Boxes and labels of a detector, the top class of a classifier; other tasks as they are."""
    import cv2

    doc = answer.model_dump()
    for det in doc.get("detections", []):
        x1, y1, x2, y2 = (int(v) for v in det["box"])
        cv2.rectangle(image, (x1, y1), (x2, y2), (0, 255, 0), 2)
        cv2.putText(image, f"{det['label']} {det['score']:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (0, 255, 0), 1)
    if doc.get("top"):
        label, score = doc["top"][0]
        cv2.putText(image, f"{label} {score:.2f}", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2)
    return image
