"""The build cache: a built target (its files and its measured result) kept under the hash of everything that
decides it, so an unchanged model rebuilds in seconds. A wrong hit is worse than a miss: the key covers the
inputs, the flags that reach the target, the builder's own code and the converters' versions."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Bump when what an entry holds changes shape: old entries then miss instead of being misread.
SCHEMA = 1
DEFAULT_CAP_BYTES = 4 << 30
# What decides an artifact besides our code: the converters, the runtimes that check it, numpy.
PACKAGES = ("onnx", "onnxruntime", "openvino", "nncf", "onnxslim", "numpy", "opencv-python-headless")
_PACKAGES_HASHED = ("builder", "runtimes")
_DONE = "entry.json"


def default_dir() -> Path:
    """EDGECTL_BUILD_CACHE, else $EDGECTL_HOME/cache/build, else ~/.cache/edgectl/build."""
    if os.environ.get("EDGECTL_BUILD_CACHE"):
        return Path(os.environ["EDGECTL_BUILD_CACHE"])
    if os.environ.get("EDGECTL_HOME"):
        return Path(os.environ["EDGECTL_HOME"]) / "cache" / "build"
    return Path.home() / ".cache" / "edgectl" / "build"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """The builder's and the runtimes' sources: a change to a converter or a measure is a miss."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in _PACKAGES_HASHED:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def key_of(parts: dict[str, Any]) -> str:
    """One key from the parts that decide an entry, our code and the converters' versions."""
    material = {"schema": SCHEMA, "code": code_digest(), "versions": versions(), **parts}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class BuildCache:
    root: Path
    cap_bytes: int = DEFAULT_CAP_BYTES

    def get(self, key: str) -> Path | None:
        """The entry's directory, or None; a hit is touched so trimming drops the least recently used."""
        entry = self.root / key
        if not (entry / _DONE).is_file():
            return None
        os.utime(entry / _DONE)
        return entry

    def put(self, key: str, files: Path | None, record: dict[str, Any]) -> None:
        """Store `files` (a directory, copied) and the record; visible only once complete."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            if files is not None and files.is_dir():
                shutil.copytree(files, tmp / "files")
            tmp.mkdir(exist_ok=True)
            (tmp / _DONE).write_text(json.dumps(record))
            shutil.rmtree(self.root / key, ignore_errors=True)
            tmp.rename(self.root / key)
        except OSError as exc:  # a cache that cannot be written costs speed, never the build
            log.warning("build cache %s: could not store an entry (%s)", self.root, exc)
            shutil.rmtree(tmp, ignore_errors=True)
            return
        self.trim()

    def entries(self) -> list[tuple[Path, float, int]]:
        """(directory, last use, bytes) of every complete entry."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            done = entry / _DONE
            if entry.name.startswith(".") or not done.is_file():
                continue
            size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
            found.append((entry, done.stat().st_mtime, size))
        return found

    def trim(self) -> int:
        """Drop the least recently used entries until the cache fits its cap; returns how many went."""
        entries = sorted(self.entries(), key=lambda e: e[1])
        total, dropped = sum(e[2] for e in entries), 0
        for entry, _, size in entries:
            if total <= self.cap_bytes:
                break
            shutil.rmtree(entry, ignore_errors=True)
            total, dropped = total - size, dropped + 1
        return dropped

    def info(self) -> dict[str, Any]:
        entries = self.entries()
        newest = max((e[1] for e in entries), default=None)
        return {"dir": str(self.root), "entries": len(entries), "bytes": sum(e[2] for e in entries),
                "cap_bytes": self.cap_bytes,
                "last_used": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest)) if newest else None}

    def clear(self) -> int:
        count = len(self.entries())
        if self.root.is_dir():
            for entry in self.root.iterdir():
                shutil.rmtree(entry, ignore_errors=True)
        return count
