"""Bundles on the wire: a deterministic tar, cut into retained chunks of at most 256 KiB (every broker's
default packet limit allows that), each with its sha256, and unpacked safely at the other end."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import FleetError
from .messages import BundleManifest, Desired

CHUNK_SIZE = 256 * 1024
MAX_MEMBERS = 10_000


class TransferError(FleetError):
    """A bundle archive or chunk is malformed or hostile; the message says which."""


@dataclass(frozen=True)
class Packed:
    data: bytes
    digest: str
    manifest: BundleManifest

    def chunk(self, index: int) -> bytes:
        return self.data[index * self.manifest.chunk_size : (index + 1) * self.manifest.chunk_size]


def pack(root: Path, chunk_size: int = CHUNK_SIZE) -> Packed:
    """Tar a bundle directory reproducibly: sorted names, no owners, no times."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    manifest = BundleManifest(digest=digest, size=len(data), chunk_size=chunk_size,
                              chunk_sha256=[hashlib.sha256(c).hexdigest() for c in chunks])
    return Packed(data, digest, manifest)


def check_chunk(manifest: BundleManifest, index: int, payload: bytes) -> None:
    if not 0 <= index < len(manifest.chunk_sha256):
        raise TransferError(f"chunk {index} of {manifest.digest[:12]}: no such chunk")
    expected = min(manifest.chunk_size, manifest.size - index * manifest.chunk_size)
    if len(payload) != expected:
        raise TransferError(f"chunk {index} of {manifest.digest[:12]}: {len(payload)} bytes, expected {expected}")
    if hashlib.sha256(payload).hexdigest() != manifest.chunk_sha256[index]:
        raise TransferError(f"chunk {index} of {manifest.digest[:12]}: sha256 mismatch")


def check_desired(manifest: BundleManifest, desired: Desired) -> None:
    """The transfer manifest (from the broker or a web server) is the one the desired state announced."""
    if manifest.digest != desired.digest or manifest.size != desired.size or \
            len(manifest.chunk_sha256) != desired.chunks:
        raise TransferError(f"transfer manifest for {manifest.digest[:12]} does not match the desired state")


def check_manifest(manifest: BundleManifest) -> None:
    count = -(-manifest.size // manifest.chunk_size)
    if count != len(manifest.chunk_sha256):
        raise TransferError(f"bundle {manifest.digest[:12]}: {len(manifest.chunk_sha256)} chunk hashes for "
                            f"{manifest.size} bytes in {manifest.chunk_size}-byte chunks (expected {count})")


def unpack(archive: Path, dest: Path, max_bytes: int) -> None:
    """Extract regular files only, refusing absolute paths, '..', links, devices and oversize content."""
    total = 0
    try:
        with tarfile.open(archive, mode="r:") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise TransferError(f"{archive.name}: {len(members)} members, more than {MAX_MEMBERS}")
            for member in members:
                _check_member(member, archive.name)
                total += member.size
                if total > max_bytes:
                    raise TransferError(f"{archive.name}: unpacks to more than {max_bytes} bytes")
            dest.mkdir(parents=True, exist_ok=True)
            for member in members:
                target = dest / member.name
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise TransferError(f"{archive.name}: {member.name} unreadable")
                with src, target.open("wb") as out:
                    out.write(src.read())
    except tarfile.TarError as exc:
        raise TransferError(f"{archive.name}: not a valid tar ({exc})") from exc


def _check_member(member: tarfile.TarInfo, where: str) -> None:
    rel = PurePosixPath(member.name)
    if not member.isfile():
        raise TransferError(f"{where}: {member.name!r} is not a regular file (links and devices are refused)")
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or "\\" in member.name:
        raise TransferError(f"{where}: unsafe path {member.name!r}")
