"""Reading and verifying a bundle directory. A bundle describes itself through manifest.json."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from pydantic import ValidationError

from . import signing
from .errors import BundleError, first_error
from .geometry import Array
from .manifest import Artifact, FileEntry, Manifest
from .tasks import Outputs

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# A manifest is a few KiB; anything this large is hostile or broken.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: Manifest
    digest: str
    signed_by: str | None

    def path(self, relative: str) -> Path:
        return self.root / relative

    def artifact_files(self, artifact: Artifact) -> list[Path]:
        return [self.root / f for f in artifact.files]

    def golden(self) -> tuple[Array, Outputs]:
        """The golden images and the FP32 reference outputs by name."""
        g = self.manifest.golden
        try:
            images: Array = np.load(self.path(g.images))
            ref = np.load(self.path(g.reference))
            if isinstance(ref, np.ndarray):  # bundles from before several outputs: the first output only
                arrays = [ref]
            else:
                arrays = [np.asarray(ref[k]) for k in ref.files]
                ref.close()
            names = g.outputs or self.manifest.output_names[:1]
            return images, dict(zip(names, arrays, strict=True))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{g.reference}: cannot read the golden vectors ({exc})") from exc


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entry(root: Path, relative: str) -> FileEntry:
    path = root / relative
    return FileEntry(path=relative, sha256=sha256_file(path), size=path.stat().st_size)


def safe_relative(relative: str) -> PurePosixPath:
    """Refuse paths that could escape the bundle directory."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in relative:
        raise BundleError(f"{MANIFEST}: unsafe file path {relative!r}")
    return rel


def parse_manifest(data: bytes, where: str = MANIFEST) -> Manifest:
    if len(data) > MAX_MANIFEST_BYTES:
        raise BundleError(f"{where}: {len(data)} bytes, larger than {MAX_MANIFEST_BYTES}")
    try:
        return Manifest.model_validate(json.loads(data))
    except json.JSONDecodeError as exc:
        raise BundleError(f"{where}: not JSON ({exc})") from exc
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise BundleError(f"{where}: key {key!r}: {msg}") from exc


def verify_files(root: Path, manifest: Manifest) -> None:
    for entry in manifest.files:
        path = root / safe_relative(entry.path)
        if path.is_symlink() or not path.is_file():
            raise BundleError(f"{entry.path}: listed in {MANIFEST} but missing or not a regular file")
        if path.stat().st_size != entry.size:
            raise BundleError(f"{entry.path}: size {path.stat().st_size}, manifest says {entry.size}")
        if sha256_file(path) != entry.sha256:
            raise BundleError(f"{entry.path}: sha256 does not match {MANIFEST}")
    listed = {e.path for e in manifest.files}
    for art in manifest.artifacts:
        for f in art.files:
            if f not in listed:
                raise BundleError(f"{MANIFEST}: artifact {art.target} names {f!r}, which has no sha256 entry")


def open_bundle(root: Path, trusted_keys: list[bytes] | None = None, allow_unsigned: bool = False) -> Bundle:
    """Read and verify a bundle. With trusted keys, the signature must be by one of them."""
    manifest_path = root / MANIFEST
    try:
        data = manifest_path.read_bytes()
    except OSError as exc:
        raise BundleError(f"{manifest_path}: cannot read ({exc.strerror})") from exc
    manifest = parse_manifest(data, str(manifest_path))
    if not manifest.artifacts:
        raise BundleError(f"{manifest_path}: the bundle has no artifacts (its build produced none)")
    verify_files(root, manifest)
    signed_by = _check_signature(root, data, trusted_keys, allow_unsigned)
    return Bundle(root, manifest, hashlib.sha256(data).hexdigest(), signed_by)


def _check_signature(root: Path, data: bytes, trusted: list[bytes] | None, allow_unsigned: bool) -> str | None:
    sig_path = root / SIGNATURE
    if not sig_path.is_file():
        if allow_unsigned or trusted is None:
            return None
        raise BundleError(f"{sig_path}: bundle is unsigned")
    if trusted is None:
        return None
    if allow_unsigned and not signing.signed_by_one_of(sig_path.read_bytes(), trusted):
        # Allowing unsigned bundles admits ones signed by keys we do not know, too (no weaker);
        # a signature by a trusted key that does not match is still refused below.
        return None
    return signing.verify(data, sig_path.read_bytes(), trusted)
