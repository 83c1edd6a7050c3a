"""The model store: verified bundles by digest, incoming chunks, and two small files written atomically
(write, fsync, rename, fsync the directory): `current.json` (what serves) and `update.json` (where an
update is). A crash or power cut at any point leaves one of the two pointers' states, never half of one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.messages import TERMINAL, BundleManifest
from fleet.transfer import check_manifest, unpack

from .errors import AgentError


class StoreError(AgentError):
    """The store cannot be read or written; the message names the path."""


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class Store:
    """One model's view of the store. Bundles and chunks are shared by digest; each model has its own two
    pointer files: the default model's in the root (where they have always been), a named model's under
    `models/<name>/`, so the models of a device update independently."""

    def __init__(self, root: Path, model: str = "default") -> None:
        self.root, self.model = root, model
        self._pointers = root if model == "default" else root / "models" / model
        try:
            for sub in ("bundles", "incoming"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            self._pointers.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{root}: cannot create the model store ({exc.strerror})") from exc

    # -- pointers ---------------------------------------------------------------------------------------
    def _read(self, name: str, folder: Path | None = None) -> dict[str, Any]:
        path = (folder or self._pointers) / name
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: unreadable ({exc})") from exc
        return data

    def pointer(self) -> dict[str, Any]:
        return self._read("current.json")

    def current(self) -> Path | None:
        digest = self.pointer().get("current")
        path = self.bundle_dir(digest) if digest else None
        return path if path is not None and path.is_dir() else None

    def previous(self) -> Path | None:
        digest = self.pointer().get("previous")
        path = self.bundle_dir(digest) if digest else None
        return path if path is not None and path.is_dir() else None

    def start_roots(self, seed: Path | None, on_error: Callable[[str], None]) -> list[Path]:
        """What to serve at start, in order: the committed bundle, the previous one, the seed. Unreadable
        pointers are reported and skipped: the seed still serves."""
        try:
            stored = [self.current(), self.previous()]
        except StoreError as exc:
            on_error(str(exc))
            stored = []
        return [r for r in (*stored, seed) if r is not None]

    def commit(self, digest: str) -> None:
        old = self.pointer().get("current")
        previous = old if old and old != digest else self.pointer().get("previous")
        atomic_write(self._pointers / "current.json", json.dumps({"current": digest, "previous": previous}).encode())

    def state(self) -> dict[str, Any]:
        return self._read("update.json")

    def set_state(self, **state: Any) -> None:
        atomic_write(self._pointers / "update.json", json.dumps(state).encode())

    # -- bundles and chunks --------------------------------------------------------------------------------
    def bundle_dir(self, digest: str) -> Path:
        return self.root / "bundles" / digest

    def incoming(self, digest: str) -> Path:
        return self.root / "incoming" / digest

    def have_chunks(self, digest: str) -> set[int]:
        folder = self.incoming(digest)
        return {int(p.stem) for p in folder.glob("*.chunk") if p.stem.isdigit()} if folder.is_dir() else set()

    def save_chunk(self, digest: str, index: int, payload: bytes) -> None:
        folder = self.incoming(digest)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{index}.tmp"
        tmp.write_bytes(payload)
        os.replace(tmp, folder / f"{index}.chunk")

    def save_transfer_manifest(self, manifest: BundleManifest) -> None:
        folder = self.incoming(manifest.digest)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "transfer.json").write_text(manifest.model_dump_json())

    def load_transfer_manifest(self, digest: str) -> BundleManifest | None:
        path = self.incoming(digest) / "transfer.json"
        try:
            return BundleManifest.model_validate_json(path.read_bytes())
        except (OSError, ValueError):
            return None

    def assemble(self, manifest: BundleManifest) -> Path:
        """Concatenate the chunks into the archive and check its digest."""
        check_manifest(manifest)
        folder = self.incoming(manifest.digest)
        archive = folder / "bundle.tar"
        digest = hashlib.sha256()
        with archive.open("wb") as out:
            for i in range(len(manifest.chunk_sha256)):
                data = (folder / f"{i}.chunk").read_bytes()
                digest.update(data)
                out.write(data)
        if digest.hexdigest() != manifest.digest:
            archive.unlink()
            raise StoreError(f"bundle {manifest.digest[:12]}: reassembled archive has the wrong sha256")
        return archive

    def install(self, manifest: BundleManifest, archive: Path, max_bytes: int) -> Path:
        """Unpack beside the store and rename into place: a bundle directory is whole or absent."""
        final = self.bundle_dir(manifest.digest)
        if final.is_dir():
            return final
        tmp = self.root / "bundles" / f".{manifest.digest}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            unpack(archive, tmp, max_bytes)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def discard_incoming(self, digest: str) -> None:
        shutil.rmtree(self.incoming(digest), ignore_errors=True)

    def discard_bundle(self, digest: str) -> None:
        """Remove a bundle no model of this device serves or keeps for a rollback."""
        if digest not in self.in_use(own_transfer=False)[0]:
            shutil.rmtree(self.bundle_dir(digest), ignore_errors=True)

    def in_use(self, own_transfer: bool = True) -> tuple[set[str], set[str]]:
        """Every model's current and previous bundles and the transfers in progress (this model's own
        included unless it is the one being given up)."""
        keep, moving = set(), set()
        for folder in (self.root, *sorted((self.root / "models").glob("*"))):
            ptr, state = self._read("current.json", folder), self._read("update.json", folder)
            keep |= {ptr.get("current"), ptr.get("previous")}
            if state.get("phase") not in TERMINAL and (own_transfer or folder != self._pointers):
                moving.add(state.get("digest"))
        return {d for d in keep | moving if d}, {d for d in moving if d}

    def prune(self) -> None:
        """Keep each model's current and previous bundles and any transfer in progress."""
        keep, moving = self.in_use()
        for folder in (self.root / "bundles").iterdir():
            if folder.name not in keep:
                shutil.rmtree(folder, ignore_errors=True)
        for folder in (self.root / "incoming").iterdir():
            if folder.name not in moving:
                shutil.rmtree(folder, ignore_errors=True)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free
