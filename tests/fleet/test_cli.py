"""The `edgectl` command line through typer's CliRunner."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgectl.app import app
from runtimes.signing import key_id

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("build", "keys", "toolchain"):
        assert command in result.output


def test_keys_init_list_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path))
    assert runner.invoke(app, ["keys", "init"]).exit_code == 0
    again = runner.invoke(app, ["keys", "init"])
    assert again.exit_code == 2 and "--force" in again.output
    exported = runner.invoke(app, ["keys", "export"])
    assert exported.exit_code == 0 and exported.output.startswith("-----BEGIN PUBLIC KEY-----")
    listed = runner.invoke(app, ["keys", "list"])
    assert key_id(exported.output.encode()) in listed.output


def test_keys_export_without_key_says_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGECTL_HOME", str(tmp_path))
    result = runner.invoke(app, ["keys", "export"])
    assert result.exit_code == 2 and "edgectl keys init" in result.output


def test_build_json_is_one_document(tmp_path: Path, media: Path) -> None:
    from tests.support.assets import MODEL

    result = runner.invoke(app, ["build", str(MODEL), "--calib", str(media / "calib"), "--val", str(media / "val"),
                                 "--targets", "onnx-fp32", "--out", str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["targets"][0]["target"] == "onnx-fp32" and doc["targets"][0]["status"] == "ok"
    assert set(doc) == {"bundle", "seconds", "targets"}


def test_build_keeps_converter_prints_out_of_the_console(tmp_path: Path, media: Path) -> None:
    """ONNX Runtime's quantiser and NNCF print progress to stdout: it goes to the debug log, not between
    our progress lines (a real process: some of it is written to fd 1 from C)."""
    from tests.support.assets import MODEL

    done = subprocess.run([sys.executable, "-m", "edgectl", "build", str(MODEL), "--calib", str(media / "calib"),
                           "--val", str(media / "val"), "--targets", "onnx-int8,openvino-int8",
                           "--recovery-budget", "0", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "onnx-int8" in done.stderr and "ok       openvino-int8" in done.stderr
    for noise in ("Collecting tensor data", "Statistics collection", "Applying Fast Bias"):
        assert noise not in done.stdout + done.stderr


def test_build_bad_target_is_a_clear_error(tmp_path: Path, media: Path) -> None:
    from tests.support.assets import MODEL

    result = runner.invoke(app, ["build", str(MODEL), "--calib", str(media / "calib"), "--targets", "onnx-fp64",
                                 "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "onnx-fp64" in result.output


def test_toolchain_status_json() -> None:
    result = runner.invoke(app, ["toolchain", "status", "--json"])
    assert result.exit_code == 0
    assert "tflite" in json.loads(result.stdout)


@pytest.mark.parametrize("name", ["#", "a/b", "x" * 70_000])
def test_cmd_name_that_is_no_topic_level_is_refused_before_dialling(name: str) -> None:
    result = runner.invoke(app, ["cmd", "dev1", name, "--broker", "mqtt://127.0.0.1:9"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.count("\n") <= 1 and "command" in result.output


def test_push_checks_the_bundle_before_it_dials_the_broker(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "manifest.json").write_text("{not json")
    result = runner.invoke(app, ["push", str(tmp_path / "b"), "--device", "d1", "--broker", "mqtt://127.0.0.1:1"])
    assert result.exit_code == 2 and str(tmp_path / "b") in result.output
    assert "broker" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
