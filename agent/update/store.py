"""The model store: verified bundles by digest, incoming chunks, and two small files written atomically
(write, fsync, rename, fsync the directory): `current.json` (what serves) and `update.json` (where an
update is). A crash or power cut at any point leaves one of the two pointers' states, never half of one."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fleet.messages import TERMINAL, BundleManifest, Desired, Phase
from fleet.transfer import check_manifest, unpack

from ..errors import AgentError

log = logging.getLogger(__name__)


class StoreError(AgentError):
    """The store cannot be read or written; the message names the path."""


Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Pointer(_Record):
    """`current.json`: what serves, and what to roll back to."""

    current: Digest | None = None
    previous: Digest | None = None


class Attempt(_Record):
    """One push (a digest and the `issued_at` that asked for it) and how it ended."""

    digest: Digest
    issued_at: float = 0.0
    phase: Phase = Phase.REFUSED


class UpdateRecord(_Record):
    """`update.json`: where an update is, and the pushes already answered (so a retained desired state that
    comes back on every reconnect is not tried again, while a new push of the same bundle is)."""

    digest: str = ""
    phase: Phase | None = None
    desired: Desired | None = None
    done: list[Attempt] = Field(default_factory=list)
    reason: str | None = None

    @field_validator("done", mode="before")
    @classmethod
    def _old_done(cls, value: Any) -> Any:
        # Before typed records, `done` held bare digests of refused or rolled-back bundles.
        return [{"digest": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value

    def answered(self, desired: Desired) -> Attempt | None:
        return next((a for a in reversed(self.done)
                     if a.digest == desired.digest and a.issued_at == desired.issued_at), None)


R = TypeVar("R", bound=_Record)
DAMAGED_SUFFIX = ".damaged"


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

    def __init__(self, root: Path, pointers: str = "",
                 on_damage: Callable[[str, Path], None] | None = None) -> None:
        self.root = root
        self._pointers = root / pointers if pointers else root
        self._on_damage = on_damage or (lambda message, path: log.warning("%s", message))
        try:
            for sub in ("bundles", "incoming"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            self._pointers.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{root}: cannot create the model store ({exc.strerror})") from exc

    # -- pointers ---------------------------------------------------------------------------------------
    def _read(self, name: str, kind: type[R], folder: Path | None = None) -> R:
        """Every state file is read here. A damaged one (truncated, not JSON, valid JSON of the wrong shape,
        unreadable) is reported, moved aside where the disk allows, and read as the empty record: the agent
        then serves its seed and takes the retained desired state again, instead of crash-looping."""
        path = (folder or self._pointers) / name
        try:
            return kind.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return kind()
        except OSError as exc:
            fault = f"unreadable ({exc.strerror})"
        except ValidationError as exc:
            fault = _fault(exc)
        self._set_aside(path, fault)
        return kind()

    def _set_aside(self, path: Path, fault: str) -> None:
        try:
            os.replace(path, path.with_name(path.name + DAMAGED_SUFFIX))
            kept = f"moved to {path.name}{DAMAGED_SUFFIX}"
        except OSError as exc:
            kept = f"left in place ({exc.strerror})"
        self._on_damage(f"{path}: {fault}; {kept}, read as empty", path)

    def pointer(self) -> Pointer:
        return self._read("current.json", Pointer)

    def current(self) -> Path | None:
        return self._existing(self.pointer().current)

    def previous(self) -> Path | None:
        return self._existing(self.pointer().previous)

    def _existing(self, digest: str | None) -> Path | None:
        path = self.bundle_dir(digest) if digest else None
        return path if path is not None and path.is_dir() else None

    def start_roots(self, seed: Path | None) -> list[Path]:
        """What to serve at start, in order: the committed bundle, the previous one, the seed."""
        return [r for r in (self.current(), self.previous(), seed) if r is not None]

    def commit(self, digest: str) -> None:
        ptr = self.pointer()
        previous = ptr.current if ptr.current and ptr.current != digest else ptr.previous
        self._write("current.json", Pointer(current=digest, previous=previous))

    def state(self) -> UpdateRecord:
        return self._read("update.json", UpdateRecord)

    def set_state(self, record: UpdateRecord) -> None:
        self._write("update.json", record)

    def _write(self, name: str, record: _Record) -> None:
        atomic_write(self._pointers / name, record.model_dump_json(exclude_defaults=True).encode())

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

    def discard_bundle(self, digest: str, damaged: bool = False) -> None:
        """Remove a bundle no model of this device serves or keeps for a rollback. A damaged one goes even
        when this model's own pointer names it (it failed to serve), never when another model's does."""
        if digest not in self.in_use(own_transfer=False, own_pointers=not damaged)[0]:
            shutil.rmtree(self.bundle_dir(digest), ignore_errors=True)

    def in_use(self, own_transfer: bool = True, own_pointers: bool = True) -> tuple[set[str], set[str]]:
        """Every model's current and previous bundles and the transfers in progress (this model's own
        left out where it is the one being given up)."""
        keep, moving = set(), set()
        for folder in (self.root, *sorted((self.root / "models").glob("*"))):
            mine = folder == self._pointers
            if own_pointers or not mine:
                ptr = self._read("current.json", Pointer, folder)
                keep |= {ptr.current, ptr.previous}
            state = self._read("update.json", UpdateRecord, folder)
            if state.phase is not None and state.phase not in TERMINAL and (own_transfer or not mine):
                moving.add(state.digest)
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


def _fault(exc: ValidationError) -> str:
    err = exc.errors()[0]
    if err["type"] == "json_invalid":
        return "damaged (not JSON: truncated or overwritten)"
    where = ".".join(str(p) for p in err["loc"]) or "top level"
    return f"damaged (key {where!r}: {err['msg']})"
