import json

from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()


def test_help_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "probe" in result.output


def test_probe_json_shape() -> None:
    result = runner.invoke(app, ["probe", "--json"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert {"arch", "os", "cpu", "memory_mb", "runtimes", "accelerators", "notes"} <= set(doc)
    assert {"model", "cores", "flags"} <= set(doc["cpu"])
    assert "version" in doc["runtimes"]["onnxruntime"]
    assert "unavailable" in doc["runtimes"]["tensorrt"]  # no GPU on the build machines


def test_probe_reports_decode_paths_without_loading_gstreamer_here() -> None:
    import sys

    from tests.support.rtsp import gst_available

    doc = json.loads(runner.invoke(app, ["probe", "--json"]).stdout)
    assert doc["decode"]["opencv_ffmpeg"] is True
    if gst_available() is None:  # the test command installs GStreamer
        assert doc["decode"]["gstreamer"].startswith("GStreamer 1.") and "avdec_h264" in doc["decode"]["software"]
    assert "gi" not in sys.modules  # asked in a child: this process builds bundles beside it
