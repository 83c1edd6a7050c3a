"""The fetch phase when the desired state points at an HTTP(S) location: the same chunks, hashes and store as
the broker path, read with range requests and resumed after a cut until the stall limit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from fleet.messages import BundleManifest, Desired
from fleet.transfer import TransferError, check_desired
from fleet.web import HttpFetchError, HttpSource

from ..errors import AgentError
from .store import Store

log = logging.getLogger(__name__)
RETRY_MAX_S = 5.0  # a server back after a restart is used again within seconds


class HttpFetchFailed(AgentError):
    def __init__(self, reason: str, keep_chunks: bool) -> None:
        super().__init__(reason)
        self.reason, self.keep_chunks = reason, keep_chunks


class HttpFetch:
    def __init__(self, desired: Desired, store: Store, source: HttpSource, stop: threading.Event,
                 stall_s: float, progress: Callable[[BundleManifest, int, int], None],
                 chunk: Callable[[int], None] = lambda _have: None) -> None:
        self.desired, self.store, self.source, self.stop = desired, store, source, stop
        self.stall_s, self.progress, self.chunk = stall_s, progress, chunk
        self.have = store.have_chunks(desired.digest)
        self.progress_at = time.monotonic()

    def run(self) -> BundleManifest:
        """Every chunk in the store, or HttpFetchFailed: a bad or tampered file refuses the update, a server
        that stays away past the stall limit keeps what arrived for the next push."""
        delay = 0.5
        while True:
            try:
                return self._attempt()
            except TransferError as exc:
                raise HttpFetchFailed(str(exc), keep_chunks=False) from exc
            except HttpFetchError as exc:
                if time.monotonic() - self.progress_at > self.stall_s:
                    raise HttpFetchFailed(f"{exc}; no progress for {self.stall_s:.0f} s ({len(self.have)} "
                                          f"chunks kept for a retry)", keep_chunks=True) from exc
                log.info("bundle fetch interrupted (%s); retrying in %.1f s", exc, delay)
            if self.stop.wait(delay):
                raise HttpFetchFailed("agent stopping", keep_chunks=True)
            delay = min(delay * 2, RETRY_MAX_S)

    def _attempt(self) -> BundleManifest:
        manifest = self._manifest()
        self.source.chunks(manifest, set(self.have), self.stop, lambda i, p: self._keep(manifest, i, p))
        if self.stop.is_set():
            raise HttpFetchFailed("agent stopping", keep_chunks=True)
        if len(self.have) < len(manifest.chunk_sha256):
            raise HttpFetchError(f"{self.source.base}: {len(self.have)}/{len(manifest.chunk_sha256)} chunks")
        return manifest

    def _manifest(self) -> BundleManifest:
        manifest = self.store.load_transfer_manifest(self.desired.digest)
        if manifest is None:
            manifest = self.source.manifest(self.desired.digest)
            check_desired(manifest, self.desired)
            self._store(lambda: self.store.save_transfer_manifest(manifest), "the transfer manifest")
            self.progress_at = time.monotonic()
            self.progress(manifest, len(self.have), len(manifest.chunk_sha256) - len(self.have))
        return manifest

    def _keep(self, manifest: BundleManifest, index: int, payload: bytes) -> None:
        self._store(lambda: self.store.save_chunk(manifest.digest, index, payload), f"chunk {index}")
        self.have.add(index)
        self.progress_at = time.monotonic()
        self.chunk(len(self.have))

    def _store(self, write: Callable[[], None], what: str) -> None:
        try:
            write()
        except OSError as exc:  # a full or read-only store ends this update, not the agent
            raise HttpFetchFailed(f"cannot store {what} in {self.store.root}: {exc.strerror}",
                                  keep_chunks=True) from exc
