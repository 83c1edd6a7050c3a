"""`edgectl metrics`: a real agent's MQTT telemetry served as Prometheus metrics, scraped over HTTP and read
with the Prometheus client's own parser; a bad payload from one device leaves the others' metrics alone."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from edgectl.app import app
from tests.support.broker import Broker
from tests.support.mqtt import FAST, start_agent
from tests.support.prom import lint

pytestmark = pytest.mark.slow


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


def _until(url: str, device: str, timeout: float = 150) -> dict[str, list[tuple[dict[str, str], float]]]:
    deadline = time.monotonic() + timeout
    while True:
        got = _scrape(url)
        fps = [v for labels, v in got.get("edge_device_fps", []) if labels["device"] == device]
        if fps and fps[0] > 0:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no fps for {device} in {timeout} s: {sorted(got)}")
        time.sleep(0.5)


def test_the_exporter_serves_every_device(own_broker: Broker, bundle: Path, media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "prom-1", env=FAST)
    exporter = subprocess.Popen([sys.executable, "-m", "edgectl", "metrics", "--listen", "127.0.0.1:0",
                                 "--broker", own_broker.url], stdout=subprocess.PIPE, text=True)
    try:
        line = exporter.stdout.readline() if exporter.stdout else ""
        assert line.startswith("serving http://127.0.0.1:"), line
        url = line.split()[1]
        publish.single("edge/broken/telemetry", b"{not json", hostname="127.0.0.1", port=own_broker.port)
        got = _until(url, "prom-1")
        with urllib.request.urlopen(url, timeout=10) as resp:
            lint(resp.read().decode())  # promtool's own rules: base units, no `quantile` outside a summary
        assert ({"device": "prom-1", "state": "online"}, 1.0) in got["edge_device_state"]
        info = got["edge_device_info"][0][0]
        assert info["device"] == "prom-1" and info["model"] and info["runtime"]
        assert {labels["camera"] for labels, _ in got["edge_camera_frames"]} == {"cam0"}
        assert {labels["percentile"] for labels, _ in got["edge_device_latency_seconds"]} == {"50", "95"}
        assert all(labels["device"] != "broken" for labels, _ in got["edge_device_fps"])
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.replace("/metrics", "/other"), timeout=5)
        exporter.terminate()
        assert exporter.wait(10) == 0  # SIGTERM stops it cleanly, whatever mask the test runner left
    finally:
        exporter.kill()
        agent.terminate()
        agent.wait(30)


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:x"])
def test_a_bad_listen_address_is_one_line(listen: str) -> None:
    result = CliRunner().invoke(app, ["metrics", "--listen", listen, "--broker", "mqtt://127.0.0.1:1"])
    assert result.exit_code == 2 and "--listen" in result.output and "Traceback" not in result.output
