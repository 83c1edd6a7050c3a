"""Hostile input: fuzzed payloads on desired and cmd/*, malicious bundle archives."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.messages import BadPayload, BundleManifest, Command, Desired, parse
from fleet.transfer import TransferError, check_chunk, unpack

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                    max_size=6), max_leaves=20)
FIELDS = st.fixed_dictionaries({}, optional={
    "schema_version": st.integers(), "digest": st.text(max_size=70), "name": st.text(max_size=10),
    "version": st.integers(), "size": st.integers(), "chunks": st.integers(), "force": JSONISH,
    "request_id": st.text(max_size=70), "args": JSONISH, "extra": JSONISH})


@settings(max_examples=5000, deadline=None)
@given(st.one_of(st.binary(max_size=300), FIELDS.map(lambda d: json.dumps(d).encode()),
                 JSONISH.map(lambda d: json.dumps(d).encode())))
def test_fuzzed_desired_and_command_payloads_never_crash(payload: bytes) -> None:
    for model, topic in ((Desired, "edge/d/desired"), (Command, "edge/d/cmd/logs")):
        try:
            parse(model, payload, topic)
        except BadPayload as exc:
            assert topic in str(exc)


@settings(max_examples=5000, deadline=None)
@given(index=st.integers(-5, 10), payload=st.binary(max_size=64))
def test_fuzzed_chunks_are_refused_cleanly(index: int, payload: bytes) -> None:
    import hashlib

    good = b"x" * 40
    manifest = BundleManifest(digest="a" * 64, size=40, chunk_size=16,
                              chunk_sha256=[hashlib.sha256(good[i:i + 16]).hexdigest() for i in (0, 16, 32)])
    try:
        check_chunk(manifest, index, payload)
    except TransferError:
        return
    assert payload == good[index * 16:(index + 1) * 16]


def _tar(members: list[tarfile.TarInfo], data: bytes = b"hello") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


def _file(name: str, size: int = 5) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(("member", "message"), [
    (_file("../escape.txt"), "unsafe path"),
    (_file("/etc/cron.d/evil"), "unsafe path"),
    (_file("a/../../b"), "unsafe path"),
    (_link("manifest.json", "/etc/passwd", tarfile.SYMTYPE), "not a regular file"),
    (_link("hard", "/etc/shadow", tarfile.LNKTYPE), "not a regular file"),
])
def test_malicious_archives_are_refused(tmp_path: Path, member: tarfile.TarInfo, message: str) -> None:
    archive = tmp_path / "b.tar"
    archive.write_bytes(_tar([member]))
    with pytest.raises(TransferError, match=message):
        unpack(archive, tmp_path / "out", max_bytes=1 << 20)
    assert not (tmp_path / "out").exists()


def test_archive_larger_than_declared_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    archive.write_bytes(_tar([_file("big.bin", 5)]))
    with pytest.raises(TransferError, match="more than"):
        unpack(archive, tmp_path / "out", max_bytes=3)


def test_oversized_manifest_payload_is_refused() -> None:
    with pytest.raises(BadPayload, match="larger than"):
        parse(Desired, b"{" + b" " * (2 << 20) + b"}", "edge/d/desired")


def test_chunk_of_another_bundle_and_duplicates() -> None:
    import hashlib

    from agent.update.updater import _Fetch

    ours, theirs = b"a" * 32, b"b" * 32
    hashes = [hashlib.sha256(ours[:16]).hexdigest(), hashlib.sha256(ours[16:]).hexdigest()]
    manifest = BundleManifest(digest="c" * 64, size=32, chunk_size=16, chunk_sha256=hashes)
    with pytest.raises(TransferError, match="sha256"):
        check_chunk(manifest, 0, theirs[:16])  # the right size and index, another bundle's bytes
    desired = Desired(digest="c" * 64, name="m", version=1, size=32, chunks=2)
    fetch = _Fetch(desired)
    fetch.accept_manifest(manifest)
    fetch.got(0)
    fetch.got(0)  # a duplicate delivery counts once
    assert not fetch.done.is_set() and fetch.have == {0}
    fetch.got(1)
    assert fetch.done.is_set()
    other = BundleManifest(digest="d" * 64, size=32, chunk_size=16, chunk_sha256=manifest.chunk_sha256)
    with pytest.raises(TransferError, match="does not match"):
        _Fetch(desired).accept_manifest(other)
