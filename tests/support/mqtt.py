"""A small recording subscriber for tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from builder import keys
from tests.support.broker import Broker
from tests.support.warm import active

# Tests run one after another on a busy machine: the selection that follows the device's load would chase
# the test runner, so it is off here and on in the test of its own (tests/agent/test_follow.py).
FAST = {"EDGE_AGENT__THRESHOLDS__SOAK_S": "2", "EDGE_AGENT__SELECTION_BUDGET_S": "1",
        "EDGE_AGENT__FOLLOW__ENABLED": "false"}


def start_agent(broker: Broker, bundle: Path | None, media: Path, state: Path, device: str,
                *extra: str, env: dict[str, str] | None = None, source: str | None = "video_640x480.mp4",
                ) -> subprocess.Popen[bytes]:
    """`edge-agent run` as a real process, trusting the test signing key, telemetry every second; outside a
    module marked `cold_devices`, as a device that had already selected for `bundle` (tests/support/warm.py)."""
    if (warm := active()) is not None and bundle is not None:
        warm.seed(state, bundle, media / source if source is not None else None)
        if source is None:  # the cameras come from a config: a file camera's decision is the pipeline one
            warm.seed(state, bundle, media / "video_640x480.mp4")
    key = state.parent / "trusted.pem"
    key.write_bytes(keys.load().public_pem)
    cmd = [sys.executable, "-m", "agent", "run", "--device-id", device, "--broker", broker.url,
           "--state-dir", str(state), "--trusted-key", str(key), "--telemetry-interval", "1", *extra]
    if source is not None:  # None: the cameras come from the config file
        cmd += ["--source", str(media / source)]
    if bundle is not None:
        cmd += ["--bundle", str(bundle)]
    full_env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})}
    log = (state.parent / f"agent-{device}.log").open("ab")
    return subprocess.Popen(cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=log)


class Recorder:
    def __init__(self, port: int, topics: list[str], client_id: str = "recorder", qos: int = 1) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self._cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.on_connect = lambda c, *_: [c.subscribe(t, qos) for t in topics]
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            doc = json.loads(msg.payload) if msg.payload else {}
        except ValueError:
            doc = {"_raw": msg.payload}
        with self._cond:
            self.messages.append((msg.topic, doc, bool(msg.retain)))
            self._cond.notify_all()

    def mark(self) -> int:
        """How many messages have arrived: `wait_for(..., since=mark)` then looks only at newer ones."""
        with self._cond:
            return len(self.messages)

    def wait_for(self, pred: Callable[[str, dict[str, Any]], bool], timeout: float = 30.0,
                 since: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            seen = since
            while True:
                for topic, doc, _ in self.messages[seen:]:
                    if pred(topic, doc):
                        return doc
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching message in {timeout} s; last: {self.messages[-3:]}")
                self._cond.wait(left)

    def of(self, suffix: str) -> list[dict[str, Any]]:
        with self._cond:
            return [d for t, d, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
