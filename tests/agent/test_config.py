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
