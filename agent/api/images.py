"""Images sent to the API (JPEG, PNG, anything OpenCV reads) → BGR frames, as a camera's frames are."""

from __future__ import annotations

import numpy as np

from runtimes.processing import Array

from ..errors import ApiError


def decode_image(data: bytes, max_pixels: int, where: str) -> Array:
    import cv2

    if not data:
        raise ApiError(400, f"{where}: empty image")
    frame = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ApiError(400, f"{where}: not an image OpenCV can decode (JPEG, PNG, BMP, WebP, …)")
    if frame.shape[0] * frame.shape[1] > max_pixels:
        raise ApiError(413, f"{where}: {frame.shape[1]}x{frame.shape[0]} is more than max_image_pixels "
                       f"({max_pixels})")
    decoded: Array = frame
    return decoded


def decode_images(items: list[bytes], max_pixels: int, where: str) -> list[Array]:
    return [decode_image(data, max_pixels, f"{where} element {i}") for i, data in enumerate(items)]
