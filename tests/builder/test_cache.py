"""The build cache: a hit for an unchanged build, a miss for each input of the key changed in turn."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder import cache as cache_module
from builder.api import BuildRequest, build
from builder.cache import BuildCache
from edgectl.app import app
from runtimes.bundle import open_bundle
from tests.support.onnx_models import small_cnn

TARGETS = "onnx-fp32,onnx-int8"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    (tmp_path / "model").mkdir()
    return small_cnn(tmp_path / "model" / "cnn.onnx", height=64, width=96)


def _cached(model: Path, media: Path, where: Path, out: Path, **changes: object) -> dict[str, bool]:
    calib = changes.pop("calib", media / "calib")
    val = changes.pop("val", media / "val")
    req = BuildRequest(model=model, calib=calib, val=val, out=out, targets=TARGETS,  # type: ignore[arg-type]
                       cache_dir=where, force=True, **changes)  # type: ignore[arg-type]
    summary = build(req)
    return {t["target"]: t["cached"] for t in summary["targets"]}


def test_an_unchanged_build_is_a_hit_and_the_bundle_verifies(model: Path, media: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    assert _cached(model, media, where, tmp_path / "a") == {"onnx-fp32": False, "onnx-int8": False}
    assert _cached(model, media, where, tmp_path / "b", version=7, name="renamed") == \
        {"onnx-fp32": True, "onnx-int8": True}
    first, second = open_bundle(tmp_path / "a").manifest, open_bundle(tmp_path / "b").manifest
    assert [a.files for a in first.artifacts] == [a.files for a in second.artifacts]
    assert {f.path: f.sha256 for f in first.files if "/" in f.path and not f.path.startswith("golden")} == \
        {f.path: f.sha256 for f in second.files if "/" in f.path and not f.path.startswith("golden")}
    assert (second.name, second.version) == ("renamed", 7)


def test_each_input_of_the_key_changed_in_turn_rebuilds(model: Path, media: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    where, out = tmp_path / "cache", tmp_path / "out"
    _cached(model, media, where, out)
    (tmp_path / "other").mkdir()
    other = small_cnn(tmp_path / "other" / "cnn.onnx", height=64, width=96, classes=12)
    assert not any(_cached(other, media, where, out).values()), "another model"
    assert _cached(model, media, where, out, min_agreement=0.5) == {"onnx-fp32": True, "onnx-int8": False}
    assert _cached(model, media, where, out, recovery_budget_s=1.0) == {"onnx-fp32": True, "onnx-int8": False}
    calib = tmp_path / "calib"
    shutil.copytree(media / "calib", calib)
    sorted(calib.iterdir())[0].unlink()
    assert not any(_cached(model, media, where, out, calib=calib).values()), "one calibration image fewer"
    val = tmp_path / "val"
    shutil.copytree(media / "val", val)
    sorted(val.iterdir())[0].unlink()
    assert not any(_cached(model, media, where, out, val=val).values()), "one validation image fewer"
    model.with_name("cnn.edgectl.json").write_text(json.dumps({"preprocess": {"mean": [0.5] * 3,
                                                                               "std": [0.25] * 3}}))
    assert not any(_cached(model, media, where, out).values()), "a sidecar that changes the preprocessing"
    model.with_name("cnn.edgectl.json").unlink()
    assert all(_cached(model, media, where, out).values()), "back to the first build"
    monkeypatch.setattr(cache_module, "versions", lambda: {"onnxruntime": "0.0-other"})
    assert not any(_cached(model, media, where, out).values()), "another converter version"
    monkeypatch.undo()
    monkeypatch.setattr(cache_module, "code_digest", lambda: "changed")
    assert not any(_cached(model, media, where, out).values()), "changed builder code"


def test_no_cache_neither_reads_nor_writes_and_the_cache_commands(model: Path, media: Path, tmp_path: Path) -> None:
    where = tmp_path / "cache"
    args = ["build", str(model), "--calib", str(media / "calib"), "--val", str(media / "val"),
            "--targets", "onnx-fp32", "--cache-dir", str(where), "--force", "--json"]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--no-cache"])
    assert first.exit_code == 0, first.output
    assert BuildCache(where).info()["entries"] == 0
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "b")]).exit_code == 0
    again = runner.invoke(app, [*args, "--out", str(tmp_path / "c")])
    assert "cached" in again.output
    info = runner.invoke(app, ["cache", "info", "--cache-dir", str(where), "--json"])
    assert json.loads(info.stdout)["entries"] >= 2  # the target and the reference outputs
    cleared = runner.invoke(app, ["cache", "clear", "--cache-dir", str(where)])
    assert "removed" in cleared.output and BuildCache(where).info()["entries"] == 0


def test_trim_drops_the_least_recently_used(tmp_path: Path) -> None:
    cache = BuildCache(tmp_path / "cache", cap_bytes=2500)
    for name in ("a", "b", "c"):
        files = tmp_path / name
        files.mkdir()
        (files / "blob").write_bytes(b"x" * 1000)
        cache.put(name, files, {})
        cache.get("a")  # a stays in use
    assert cache.get("a") is not None and cache.get("b") is None and cache.get("c") is not None
