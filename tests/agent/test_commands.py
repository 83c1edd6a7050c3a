"""`reselect` and `restart` over MQTT on a real agent, through `edgectl cmd`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from agent.commands import RESTART_EXIT
from edgectl.app import app
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent

runner = CliRunner()


def _selections(rec: Recorder, device: str) -> list[dict[str, object]]:
    return [d for d in rec.of(f"{device}/events") if d["kind"] == "selection"]


def test_reselect_keeps_serving_then_restart_exits_for_systemd(own_broker: Broker, recorder: Recorder,
                                                              bundle: Path, media: Path, tmp_path: Path) -> None:
    proc = start_agent(own_broker, bundle, media, tmp_path / "state", "rc1", env=FAST)
    try:
        recorder.wait_for(lambda t, d: t == "edge/rc1/status" and d["state"] == "online", 60)
        reply = runner.invoke(app, ["cmd", "rc1", "reselect", "--broker", own_broker.url])
        assert reply.exit_code == 0, reply.output
        assert json.loads(reply.stdout)["ok"]
        seen = len(recorder.of("rc1/results"))
        recorder.wait_for(lambda t, _d: t == "edge/rc1/events" and len(_selections(recorder, "rc1")) >= 2, 60)
        assert _selections(recorder, "rc1")[-1]["data"]["cached"] is False  # measured again, not the cache
        recorder.wait_for(lambda t, _d: t == "edge/rc1/results" and len(recorder.of("rc1/results")) > seen + 2, 20)
        reply = runner.invoke(app, ["cmd", "rc1", "restart", "--broker", own_broker.url])
        assert json.loads(reply.stdout)["result"] == "restarting"
        assert proc.wait(30) == RESTART_EXIT  # Restart=on-failure brings it back under systemd
        recorder.wait_for(lambda t, d: t == "edge/rc1/status" and d["state"] == "offline", 10)
    finally:
        proc.kill()
