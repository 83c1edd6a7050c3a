"""Reading a bundle: every file's hash, the signature against trusted keys, hostile paths."""

import json
import shutil
from pathlib import Path

import pytest

from builder import keys
from runtimes.bundle import open_bundle
from runtimes.errors import BundleError


@pytest.fixture
def copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "b"
    shutil.copytree(bundle, dst)
    return dst


def trusted() -> list[bytes]:
    return [keys.load().public_pem]


def test_real_bundle_verifies(bundle: Path) -> None:
    b = open_bundle(bundle, trusted_keys=trusted())
    assert b.signed_by == keys.load().key_id
    assert {a.target for a in b.manifest.artifacts} >= {"onnx-fp32", "onnx-int8", "openvino-fp16", "tensorrt"}
    assert len(b.digest) == 64


def test_tampered_file_is_named(copy: Path) -> None:
    path = copy / "onnx-int8" / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"onnx-int8/model\.onnx: sha256"):
        open_bundle(copy, trusted_keys=trusted())


def test_unknown_key_is_refused(copy: Path, tmp_path: Path) -> None:
    other = keys.init(tmp_path / "other")
    with pytest.raises(BundleError, match="unknown key"):
        open_bundle(copy, trusted_keys=[other.public_pem])


def test_edited_manifest_breaks_the_signature(copy: Path) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["version"] = 99
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="does not match"):
        open_bundle(copy, trusted_keys=trusted())


def test_unsigned_refused_unless_allowed(copy: Path) -> None:
    (copy / "manifest.sig").unlink()
    with pytest.raises(BundleError, match="unsigned"):
        open_bundle(copy, trusted_keys=trusted())
    assert open_bundle(copy, trusted_keys=trusted(), allow_unsigned=True).signed_by is None


@pytest.mark.parametrize("evil", ["../escape.bin", "/etc/passwd", "a/../../b"])
def test_path_traversal_in_manifest_is_refused(copy: Path, evil: str) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"][0]["path"] = evil
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="unsafe file path"):
        open_bundle(copy)


def test_bad_key_in_manifest_is_named(copy: Path) -> None:
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["preprocess"]["resize"] = "squash"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"preprocess\.resize"):
        open_bundle(copy)
