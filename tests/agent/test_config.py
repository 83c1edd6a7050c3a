from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent import config
from agent.cli import app
from agent.errors import ConfigError


def test_toml_env_and_flags_layer(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('device_id = "cam-7"\n[broker]\nurl = "mqtt://10.0.0.1:1883"\n[[cameras]]\nsource = "0"\n')
    cfg = config.load(path, {"broker": {"url": "mqtt://127.0.0.1:1"}},
                      environ={"EDGE_AGENT__TELEMETRY_INTERVAL_S": "2.5", "EDGE_AGENT__BROKER__PROTOCOL": "3.1.1"})
    assert cfg.device_id == "cam-7" and cfg.broker.url == "mqtt://127.0.0.1:1"
    assert cfg.telemetry_interval_s == 2.5 and cfg.broker.protocol == "3.1.1"
    assert cfg.cameras[0].source == "0"


def test_yaml(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("device_id: y1\ncameras:\n  - source: rtsp://127.0.0.1/x\n    id: door\n")
    assert config.load(path, environ={}).cameras[0].id == "door"


@pytest.mark.parametrize(("text", "key"), [
    ('[broker]\nurll = "x"\n', "broker.urll"),
    ('device_id = "a/b"\n', "device_id"),
    ("[[cameras]]\nid = \"c\"\n", "cameras.0.source"),
    ("telemetry_interval_s = -1\n", "telemetry_interval_s"),
    ('[drill]\nafter_calls = 10\nmode = "explode"\n', "drill.mode"),
])
def test_bad_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.load(path, environ={})


def test_config_check_cli(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text('[broker]\nport = 1883\n')
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2 and "broker.port" in result.output
    path.write_text('device_id = "ok1"\n')
    assert CliRunner().invoke(app, ["config", "check", str(path)]).exit_code == 0


def test_not_toml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[[[")
    with pytest.raises(ConfigError, match=r"agent\.toml: not valid TOML"):
        config.load(path, environ={})


@pytest.mark.parametrize(("url", "why"), [
    ("mqtt://127.0.0.1:0", "port 0 is not a port"),
    ("mqtt://127.0.0.1:99999", "1-65535"),
    ("http://127.0.0.1:1883", "scheme"),
    ("mqtt://:1883", "no host"),
    ("mqtt://host:1883/path", "no path"),
])
def test_broker_urls_are_checked_once_for_check_and_run(tmp_path: Path, url: str, why: str) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(f'[broker]\nurl = "{url}"\n')
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2 and why in result.output and "broker.url" in result.output
    run = CliRunner().invoke(app, ["run", "--broker", url, "--state-dir", str(tmp_path / "s")])
    assert run.exit_code == 2 and why in run.output and "Traceback" not in run.output


def test_unknown_host_says_it_cannot_resolve() -> None:
    from fleet.mqtt import BrokerSettings, MqttClient

    client = MqttClient("dns-test", BrokerSettings(host="no-such-host.invalid", port=1883))
    assert not client._try("3.1.1", timeout=1.0)
    assert "cannot resolve host 'no-such-host.invalid'" in client._attempt.reason
