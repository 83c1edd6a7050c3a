"""Real photos (from scikit-image's bundled data) and demo videos, generated into a cache.

    python scripts/make_media.py [OUT_DIR]     (default: .cache/media)

Idempotent: re-running with the same version is a no-op. Writes:
    photos/       the source photos as PNG
    calib/        augmented crops for INT8 calibration (seed 1)
    val/          augmented crops for the accuracy gate (seed 2; never the same image as calib/)
    golden/       the plain photos, resized, for golden vectors
    video_640x480.mp4, video_1920x1080.mp4   pans and zooms over the photos
    faces_calib/, faces_val/   scenes for the face detector: real LFW face photos (scikit-image's
                  lfw_subset; faces 0-49 for calibration, 50-99 for validation) on real backgrounds, and
                  crops of the astronaut and cameraman photos
    video_faces_640x480.mp4   faces drifting over backgrounds
    text_calib/, text_val/    scenes for the text detector: the real text photos (scikit-image's page and
                  text) pasted at several scales on real backgrounds
    textlines_calib/, textlines_val/   192x48 crops of the page photo's text lines, half of them upside down
                  (for the text-orientation classifier; the name ends in _0 or _180)
    video_text_640x480.mp4    the page drifting over backgrounds
    facecrops_calib/, facecrops_val/   the LFW faces alone, jittered and scaled to 192x192 (face landmarks)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

VERSION = 7
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


BACKGROUNDS = ["coffee", "rocket", "motorcycle_left", "horse", "brick", "grass", "hubble_deep_field", "coins"]
FACE_PHOTOS = ["astronaut", "camera"]


def lfw_faces() -> np.ndarray:
    """100 real face photos (25x25 grey, tightly cropped), as BGR uint8."""
    import skimage.data

    faces = np.load(Path(skimage.data.__file__).parent / "lfw_subset.npy")[:100]
    return np.stack([cv2.cvtColor((f * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR) for f in faces])


def face_scene(photos: dict[str, np.ndarray], faces: np.ndarray, rng: np.random.Generator,
               size: int = 320) -> np.ndarray:
    """A background crop with one or two real faces at sizes the short-range detector is made for."""
    if rng.random() < 0.25:
        return augment(photos[FACE_PHOTOS[int(rng.integers(len(FACE_PHOTOS)))]], rng, size)
    scene = augment(photos[BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]], rng, size)
    for _ in range(int(rng.integers(1, 3))):
        side = int(rng.integers(size // 4, size // 2))
        face = cv2.resize(faces[int(rng.integers(len(faces)))], (side, side), interpolation=cv2.INTER_CUBIC)
        y, x = (int(v) for v in rng.integers(0, size - side, 2))
        scene[y : y + side, x : x + side] = face
    return scene


def write_face_scenes(photos: dict[str, np.ndarray], faces: np.ndarray, out: Path, count: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(out / f"{seed}_{i:04d}.jpg"), face_scene(photos, faces, rng), [cv2.IMWRITE_JPEG_QUALITY, 92])


def write_face_video(photos: dict[str, np.ndarray], faces: np.ndarray, path: Path, seconds: float, fps: int) -> None:
    """A face drifting across a background, a new face and background every second."""
    w, h = 640, 480
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(int(seconds * fps)):
        second, t = divmod(i, fps)
        scene = cv2.resize(photos[BACKGROUNDS[second % len(BACKGROUNDS)]], (w, h))
        face = cv2.resize(faces[(second * 7) % len(faces)], (200, 200), interpolation=cv2.INTER_CUBIC)
        x, y = 40 + int(360 * t / fps), 140
        scene[y : y + 200, x : x + 200] = face
        writer.write(scene)
    writer.release()


TEXT_PHOTOS = ["page.png", "text.png"]


def text_photos() -> list[np.ndarray]:
    import skimage.data

    data_dir = Path(skimage.data.__file__).parent
    return [cv2.imread(str(data_dir / name), cv2.IMREAD_COLOR) for name in TEXT_PHOTOS]


def text_scene(photos: dict[str, np.ndarray], texts: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 640x480 background with one or two real text photos pasted at 0.6-1.6x."""
    scene = cv2.resize(augment(photos[BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]], rng, 480), (640, 480))
    for _ in range(int(rng.integers(1, 3))):
        text = texts[int(rng.integers(len(texts)))]
        scale = rng.uniform(0.6, 1.6)
        h, w = min(int(text.shape[0] * scale), 470), min(int(text.shape[1] * scale), 630)
        patch = cv2.convertScaleAbs(cv2.resize(text, (w, h)), alpha=rng.uniform(0.85, 1.15), beta=rng.uniform(-15, 15))
        y, x = int(rng.integers(0, 480 - h + 1)), int(rng.integers(0, 640 - w + 1))
        scene[y : y + h, x : x + w] = patch
    return scene


def text_line(page: np.ndarray, rng: np.random.Generator, flip: bool) -> np.ndarray:
    """A strip of the page photo around one or two text lines, 192x48, upside down when flip."""
    h = int(rng.integers(22, 40))
    y = int(rng.integers(38, 150 - h))  # the page's body text; above is the title, below the code sample
    w = int(rng.integers(140, page.shape[1]))
    x = int(rng.integers(0, page.shape[1] - w + 1))
    strip = cv2.resize(page[y : y + h, x : x + w], (192, 48), interpolation=cv2.INTER_AREA)
    return cv2.rotate(strip, cv2.ROTATE_180) if flip else strip


def write_text_media(photos: dict[str, np.ndarray], out: Path) -> None:
    texts = text_photos()
    for folder, count, seed in (("text_calib", 96, 5), ("text_val", 64, 6)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for i in range(count):
            cv2.imwrite(str(out / folder / f"{seed}_{i:04d}.jpg"), text_scene(photos, texts, rng))
    for folder, count, seed in (("textlines_calib", 96, 7), ("textlines_val", 64, 8)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        for i in range(count):
            flip = i % 2 == 1
            cv2.imwrite(str(out / folder / f"{seed}_{i:04d}_{180 if flip else 0}.png"), text_line(texts[0], rng, flip))
    writer = cv2.VideoWriter(str(out / "video_text_640x480.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 15, (640, 480))
    for i in range(90):
        scene = cv2.resize(photos[BACKGROUNDS[(i // 15) % len(BACKGROUNDS)]], (640, 480))
        x = 20 + 2 * (i % 15)
        scene[120 : 120 + texts[0].shape[0], x : x + texts[0].shape[1]] = texts[0]
        writer.write(scene)
    writer.release()


def write_face_crops(faces: np.ndarray, out: Path, count: int, seed: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        face = faces[i % len(faces)]
        m = int(rng.integers(0, 4))
        crop = face[m : 25 - int(rng.integers(0, 4)), m : 25 - int(rng.integers(0, 4))]
        crop = cv2.convertScaleAbs(crop, alpha=rng.uniform(0.85, 1.15), beta=rng.uniform(-15, 15))
        cv2.imwrite(str(out / f"{seed}_{i:04d}.png"), cv2.resize(crop, (192, 192), interpolation=cv2.INTER_CUBIC))


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
    faces = lfw_faces()
    write_face_scenes(photos, faces[:50], out / "faces_calib", 128, seed=3)
    write_face_scenes(photos, faces[50:], out / "faces_val", 96, seed=4)
    write_face_video(photos, faces, out / "video_faces_640x480.mp4", 6.0, 15)
    write_text_media(photos, out)
    write_face_crops(faces[:50], out / "facecrops_calib", 100, seed=9)
    write_face_crops(faces[50:], out / "facecrops_val", 64, seed=10)
    stamp.write_text(json.dumps({"version": VERSION, "photos": sorted(photos)}))
    return out


if __name__ == "__main__":
    print(ensure_media(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
