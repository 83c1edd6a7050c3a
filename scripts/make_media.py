"""Real photos (from scikit-image's bundled data) and demo videos, generated into a cache.

    python scripts/make_media.py [OUT_DIR]     (default: .cache/media)

Idempotent: re-running with the same version is a no-op. Writes:
    photos/       the source photos as PNG
    calib/        augmented crops for INT8 calibration (seed 1)
    val/          augmented crops for the accuracy gate (seed 2; never the same image as calib/)
    golden/       the plain photos, resized, for golden vectors
    video_640x480.mp4, video_1920x1080.mp4   pans and zooms over the photos
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

VERSION = 3
PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
          "horse.png", "camera.png", "hubble_deep_field.jpg", "coins.png", "brick.png", "grass.png"]
# Calibration and validation crops come from photos of things ImageNet knows: textures (brick, grass)
# have no clear class, so top-1 "agreement" on them measures noise, not the quantisation.
OBJECT_PHOTOS = ["chelsea", "coffee", "astronaut", "rocket", "motorcycle_left", "motorcycle_right", "camera"]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / ".cache" / "media"


def load_photos() -> dict[str, np.ndarray]:
    import skimage.data

    data_dir = Path(skimage.data.__file__).parent
    out = {}
    for name in PHOTOS:
        img = cv2.imread(str(data_dir / name), cv2.IMREAD_COLOR)
        if img is not None:
            out[Path(name).stem] = img
    return out


def augment(img: np.ndarray, rng: np.random.Generator, size: int = 320) -> np.ndarray:
    h, w = img.shape[:2]
    frac = rng.uniform(0.6, 1.0)
    ch, cw = int(h * frac), int(w * frac * rng.uniform(0.8, 1.2))
    cw = min(cw, w)
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    crop = img[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = cv2.convertScaleAbs(crop, alpha=rng.uniform(0.85, 1.15), beta=rng.uniform(-15, 15))
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def write_crops(photos: dict[str, np.ndarray], out: Path, count: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [n for n in OBJECT_PHOTOS if n in photos]
    for i in range(count):
        name = names[i % len(names)]
        cv2.imwrite(str(out / f"{seed}_{i:04d}_{name}.jpg"), augment(photos[name], rng), [cv2.IMWRITE_JPEG_QUALITY, 92])


def write_video(photos: dict[str, np.ndarray], path: Path, size: tuple[int, int], seconds: float, fps: int) -> None:
    """Pan and zoom over each photo in turn, like a camera sweeping a scene."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    names = ["chelsea", "coffee", "astronaut", "rocket"]
    frames = int(seconds * fps)
    for i in range(frames):
        img = photos[names[(i * len(names)) // frames]]
        t = ((i * len(names)) % frames) / frames
        ih, iw = img.shape[:2]
        zoom = 1.0 - 0.35 * t
        cw, ch = int(iw * zoom), int(ih * zoom)
        x0, y0 = int((iw - cw) * t), int((ih - ch) * 0.5)
        writer.write(cv2.resize(img[y0 : y0 + ch, x0 : x0 + cw], (w, h), interpolation=cv2.INTER_LINEAR))
    writer.release()


def ensure_media(out: Path = DEFAULT_OUT) -> Path:
    stamp = out / "media.json"
    if stamp.is_file() and json.loads(stamp.read_text()).get("version") == VERSION:
        return out
    photos = load_photos()
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "golden").mkdir(parents=True, exist_ok=True)
    for name, img in photos.items():
        cv2.imwrite(str(out / "photos" / f"{name}.png"), img)
    for name in ("chelsea", "coffee", "astronaut", "rocket", "horse", "motorcycle_left"):
        cv2.imwrite(str(out / "golden" / f"{name}.png"), photos[name])
    write_crops(photos, out / "calib", 128, seed=1)
    write_crops(photos, out / "val", 128, seed=2)
    write_video(photos, out / "video_640x480.mp4", (640, 480), 6.0, 15)
    write_video(photos, out / "video_1920x1080.mp4", (1920, 1080), 4.0, 15)
    stamp.write_text(json.dumps({"version": VERSION, "photos": sorted(photos)}))
    return out


if __name__ == "__main__":
    print(ensure_media(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
