"""Bundle bytes over HTTP(S), off the broker: the layout a static server (nginx, an object store, a CDN) serves,
a small server for a fleet without one, and the device's resumable, chunk-verified fetch.

Layout under a base URL: `<base>/<digest>/manifest.json` (the same BundleManifest the broker carries) and
`<base>/<digest>/bundle.tar` (the packed bundle). The device reads the tar with range requests, checks every
chunk's sha256 as it arrives and keeps each one, so a cut transfer resumes where it stopped and everything
after the fetch (assembly, signature, anti-rollback) is exactly the MQTT path's."""

from __future__ import annotations

import http.server
import logging
import os
import re
import shutil
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import FleetError
from .messages import BundleManifest
from .transfer import Packed, TransferError, check_chunk, check_manifest

log = logging.getLogger(__name__)
MANIFEST, ARCHIVE = "manifest.json", "bundle.tar"
TIMEOUT_S = 20.0
MAX_MANIFEST = 4 << 20


class HttpFetchError(FleetError):
    """The server could not be reached or answered wrongly; the chunks received so far are kept."""


def layout(packed: Packed, out: Path) -> Path:
    """Write one bundle for a static server: `out/<digest>/{manifest.json,bundle.tar}`; returns the folder."""
    folder = out / packed.digest
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (ARCHIVE + ".part")
        tmp.write_bytes(packed.data)
        os.replace(tmp, folder / ARCHIVE)  # a server never sees half a tar under the real name
        (folder / MANIFEST).write_text(packed.manifest.model_dump_json())
    except OSError as exc:
        raise FleetError(f"{out}: cannot lay the bundle out ({exc.strerror})") from exc
    return folder


def bundle_url(base: str, digest: str, name: str) -> str:
    return f"{base.rstrip('/')}/{digest}/{name}"


@dataclass(frozen=True)
class HttpSource:
    """Where a device fetches bundle bytes: a base URL, and the CA that signs its https certificate."""

    base: str
    ca_file: str | None = None

    def _context(self) -> ssl.SSLContext | None:
        if not self.base.startswith("https://"):
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    def _open(self, url: str, start: int | None = None) -> http.client.HTTPResponse:
        request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
        try:
            response: http.client.HTTPResponse = urllib.request.urlopen(
                request, timeout=TIMEOUT_S, context=self._context())
        except urllib.error.HTTPError as exc:
            raise HttpFetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise HttpFetchError(f"{url}: {getattr(exc, 'reason', exc)}") from exc
        return response

    def manifest(self, digest: str) -> BundleManifest:
        url = bundle_url(self.base, digest, MANIFEST)
        with self._open(url) as response:
            body = response.read(MAX_MANIFEST + 1)
        try:
            manifest = BundleManifest.model_validate_json(body)
        except ValueError as exc:
            raise HttpFetchError(f"{url}: not a bundle manifest") from exc
        check_manifest(manifest)
        if manifest.digest != digest:
            raise TransferError(f"{url}: manifest for {manifest.digest[:12]}, not {digest[:12]}")
        return manifest

    def chunks(self, manifest: BundleManifest, have: set[int], stop: threading.Event,
               on_chunk: Callable[[int, bytes], None]) -> None:
        """Stream the missing chunks in order with one ranged GET from the first missing one; each chunk is
        checked before `on_chunk` keeps it. Raises HttpFetchError on a cut (what arrived is kept)."""
        missing = [i for i in range(len(manifest.chunk_sha256)) if i not in have]
        if not missing:
            return
        url = bundle_url(self.base, manifest.digest, ARCHIVE)
        start = missing[0] * manifest.chunk_size
        with self._open(url, start) as response:
            if start and response.status != 206:
                raise HttpFetchError(f"{url}: the server ignores range requests (HTTP {response.status})")
            self._read(response, manifest, missing[0], have, stop, on_chunk, url)

    @staticmethod
    def _read(response: http.client.HTTPResponse, manifest: BundleManifest, first: int, have: set[int],
              stop: threading.Event, on_chunk: Callable[[int, bytes], None], url: str) -> None:
        for index in range(first, len(manifest.chunk_sha256)):
            if stop.is_set():
                return
            want = min(manifest.chunk_size, manifest.size - index * manifest.chunk_size)
            try:
                payload = response.read(want)
            except (OSError, http.client.HTTPException) as exc:
                raise HttpFetchError(f"{url}: transfer cut at chunk {index} ({exc})") from exc
            if len(payload) < want:
                raise HttpFetchError(f"{url}: transfer cut at chunk {index}")
            if index not in have:
                check_chunk(manifest, index, payload)
                on_chunk(index, payload)


# -- a server for a fleet without one ----------------------------------------------------------------------
RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges (the standard library's handler has none)."""

    def send_head(self):  # type: ignore[no-untyped-def]
        match = RANGE.match(self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        start, end = int(match.group(1)), int(match.group(2) or size - 1)
        if start >= size:
            self.send_error(416, "range not satisfiable")
            return None
        end = min(end, size - 1)
        handle = path.open("rb")
        handle.seek(start)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        return _Limited(handle, end - start + 1)

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        if isinstance(source, _Limited):
            source.copy_to(outputfile)
        else:
            shutil.copyfileobj(source, outputfile)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Limited:
    def __init__(self, handle: object, length: int) -> None:
        self.handle, self.length = handle, length

    def copy_to(self, out: object) -> None:
        left = self.length
        while left > 0:
            block = self.handle.read(min(left, 1 << 16))  # type: ignore[attr-defined]
            if not block:
                return
            out.write(block)  # type: ignore[attr-defined]
            left -= len(block)

    def close(self) -> None:
        self.handle.close()  # type: ignore[attr-defined]


def serve(root: Path, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """Serve `root` (a layout) on host:port in a thread; `.shutdown()` stops it."""

    def handler(*args: object) -> _Handler:
        return _Handler(*args, directory=str(root))  # type: ignore[arg-type]

    try:
        server = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise FleetError(f"--listen {host}:{port}: cannot listen ({exc.strerror})") from exc
    threading.Thread(target=server.serve_forever, name="bundle-server", daemon=True).start()
    return server
