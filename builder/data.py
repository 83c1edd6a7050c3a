"""Calibration and validation images, from a folder of images or a video."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.manifest import Preprocess
from runtimes.processing import Array, resize_frame

from .errors import CalibrationError

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
MIN_SAMPLES = 100
# Fewer validation images than this cannot measure agreement: one flip moves it by more than 10 points.
MIN_VALIDATION = 10
MAX_VIDEO_FRAMES = 300


@dataclass(frozen=True)
class ImageSet:
    images: Array  # uint8 NxHxWx3, model size and colour order
    names: list[str]
    digests: set[str]  # of the source frames: calibration and validation must not share one


def load(source: Path, pre: Preprocess, what: str) -> ImageSet:
    if not source.exists():
        raise CalibrationError(f"{source}: {what} set not found")
    frames = _folder(source) if source.is_dir() else _video(source)
    if not frames:
        raise CalibrationError(f"{source}: the {what} set is empty (no readable images or video frames)")
    if len(frames) < MIN_SAMPLES:
        log.warning("%s: only %d %s samples (fewer than %d makes INT8 less reliable)",
                    source, len(frames), what, MIN_SAMPLES)
    images = np.stack([resize_frame(f, pre)[0] for _, f in frames])
    digests = {hashlib.sha256(f.tobytes()).hexdigest() for _, f in frames}
    return ImageSet(images, [n for n, _ in frames], digests)


def _folder(folder: Path) -> list[tuple[str, Array]]:
    import cv2

    frames = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            log.warning("%s: unreadable image, skipped", path)
            continue
        frames.append((path.name, img))
    return frames


def _video(path: Path) -> list[tuple[str, Array]]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise CalibrationError(f"{path}: neither a folder of images nor a readable video")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or MAX_VIDEO_FRAMES
    step = max(1, total // MAX_VIDEO_FRAMES)
    frames, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append((f"{path.name}#{index}", frame))
        index += 1
    cap.release()
    return frames


def split(full: ImageSet, val_share: float = 0.5) -> tuple[ImageSet, ImageSet]:
    """Calibration and validation from one source: alternate frames, so neither set is one scene."""
    idx = np.arange(len(full.images))
    val_mask = (idx % round(1 / val_share)) == 0
    return _subset(full, ~val_mask), _subset(full, val_mask)


def _subset(full: ImageSet, mask: Array) -> ImageSet:
    names = [n for n, m in zip(full.names, mask, strict=True) if m]
    digests = {hashlib.sha256(img.tobytes()).hexdigest() for img in full.images[mask]}
    return ImageSet(full.images[mask], names, digests)


def check_disjoint(calib: ImageSet, val: ImageSet, calib_src: Path, val_src: Path) -> None:
    shared = calib.digests & val.digests
    if shared:
        raise CalibrationError(f"{calib_src} and {val_src} share {len(shared)} identical images; "
                               "calibration and validation sets must not overlap")


def check_sizes(calib: ImageSet, val: ImageSet, calib_src: Path, val_src: Path | None) -> None:
    where = f"{val_src}" if val_src else f"{calib_src} (half of it validates)"
    if len(val.images) < MIN_VALIDATION:
        raise CalibrationError(f"{where}: {len(val.images)} validation images; at least {MIN_VALIDATION} are needed "
                               "to measure agreement (give --val or more --calib images)")
    if not len(calib.images):
        raise CalibrationError(f"{calib_src}: no calibration images left after the validation split")
