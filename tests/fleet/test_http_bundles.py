"""Bundle bytes over HTTP(S): the layout, range reads that resume, a tampered file refused; then a real agent
fetching from a real nginx (Debian's package) on loopback: commit, a transfer cut by killing the server, and a
tampered archive."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from fleet import web
from fleet.transfer import TransferError, pack
from tests.support.broker import Broker, free_port
from tests.support.mqtt import FAST, Recorder, start_agent
from tests.support.updates import serving, wait_chunks
from tests.support.web import Nginx

runner = CliRunner()


def _fetch_all(source: web.HttpSource, digest: str, have: dict[int, bytes]) -> None:
    manifest = source.manifest(digest)
    source.chunks(manifest, set(have), threading.Event(), have.__setitem__)


def test_layout_and_ranged_reads_resume(bundle: Path, tmp_path: Path) -> None:
    packed = pack(bundle, chunk_size=64 * 1024)
    web.layout(packed, tmp_path / "site")
    server = web.serve(tmp_path / "site", "127.0.0.1", free_port())
    try:
        source = web.HttpSource(f"http://127.0.0.1:{server.server_address[1]}")
        have = {0: packed.chunk(0), 3: packed.chunk(3)}  # a transfer cut earlier kept these
        _fetch_all(source, packed.digest, have)
        assert b"".join(have[i] for i in sorted(have)) == packed.data
    finally:
        server.shutdown()


def test_a_tampered_archive_is_refused_by_its_chunk_hash(bundle: Path, tmp_path: Path) -> None:
    packed = pack(bundle)
    folder = web.layout(packed, tmp_path / "site")
    data = bytearray((folder / web.ARCHIVE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / web.ARCHIVE).write_bytes(bytes(data))
    server = web.serve(tmp_path / "site", "127.0.0.1", free_port())
    try:
        with pytest.raises(TransferError, match="sha256 mismatch"):
            _fetch_all(web.HttpSource(f"http://127.0.0.1:{server.server_address[1]}"), packed.digest, {})
    finally:
        server.shutdown()


def test_an_unreachable_server_is_one_line(bundle: Path) -> None:
    with pytest.raises(web.HttpFetchError, match=r"manifest\.json"):
        web.HttpSource(f"http://127.0.0.1:{free_port()}").manifest(pack(bundle).digest)


def _push(broker: Broker, bundle: Path, device: str, base: str, site: Path, *extra: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["push", str(bundle), "--device", device, "--broker", broker.url, "--timeout", "120",
                                 "--http", base, "--http-dir", str(site), "--json", *extra])
    assert result.stdout, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.mark.slow
def test_push_over_nginx_commits(own_broker: Broker, recorder: Recorder, bundle: Path, bundle_v2: Path,
                                 media: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    nginx = Nginx(site, tmp_path / "nginx").start()
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "h1", env=FAST)
    try:
        serving(recorder, "h1", 1)
        results = _push(own_broker, bundle_v2, "h1", nginx.url, site)
        assert results[0]["result"] == "committed", results
        chunks = [t for t, _, _ in recorder.messages if "/chunk/" in t]
        assert chunks == []  # not one byte of the bundle through the broker
    finally:
        agent.kill()
        nginx.stop()


@pytest.mark.slow
def test_a_cut_transfer_resumes_and_a_tampered_one_is_refused(own_broker: Broker, recorder: Recorder,
                                                              bundle: Path, bundle_v2: Path, media: Path,
                                                              tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    nginx = Nginx(site, tmp_path / "nginx", rate="1m").start()  # slow enough to cut mid-transfer
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "h2", env=FAST)
    try:
        serving(recorder, "h2", 1)
        done: list[list[dict[str, object]]] = []
        pusher = threading.Thread(target=lambda: done.append(_push(own_broker, bundle_v2, "h2", nginx.url, site)))
        pusher.start()
        wait_chunks(tmp_path / "state" / "store" / "incoming", 2)
        nginx.stop()  # the server dies mid-transfer; the agent keeps its chunks and retries
        nginx.extra = ""
        nginx.start()
        pusher.join(150)
        assert done and done[0][0]["result"] == "committed", done
        tampered = pack(bundle)  # v1 again, with a flipped byte on the server
        folder = web.layout(tampered, site)
        data = bytearray((folder / web.ARCHIVE).read_bytes())
        data[-100] ^= 0xFF
        (folder / web.ARCHIVE).write_bytes(bytes(data))
        result = runner.invoke(app, ["push", str(bundle), "--device", "h2", "--broker", own_broker.url, "--timeout",
                                     "60", "--http", nginx.url, "--force", "--json"])
        outcome = json.loads(result.stdout)[0]
        assert outcome["result"] == "refused" and "sha256" in str(outcome["reason"]), outcome
        serving(recorder, "h2", 2, 10)  # v2 serves on
    finally:
        agent.kill()
        nginx.stop()


def test_a_bad_http_url_is_one_line_before_any_connection(bundle: Path) -> None:
    result = runner.invoke(app, ["push", str(bundle), "--device", "d", "--http", "ftp://x"])
    assert result.exit_code == 2 and result.output.count("error:") == 1 and "--http" in result.output
