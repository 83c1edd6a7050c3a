"""Remote commands on edge/<device>/cmd/<name>: restart, reselect, logs, config. Replies go to the MQTT 5
response topic with its correlation data, or (3.1.1) to edge/<device>/reply/<request_id>."""

from __future__ import annotations

import collections
import logging
import math
import threading
from typing import Any, Protocol

import paho.mqtt.client as mqtt

from fleet.messages import BadPayload, Command, Reply, parse
from fleet.mqtt import MqttClient
from fleet.topics import COMMANDS, Topics
from runtimes.errors import RuntimesError

from .errors import AgentError
from .reporting.messaging import Messenger

log = logging.getLogger(__name__)
SEEN_REQUESTS = 512  # request ids remembered, so a redelivered command does not run twice
RESTART_EXIT = 75  # EX_TEMPFAIL: systemd's Restart=on-failure brings the agent back


class RingLog(logging.Handler):
    """The agent's recent log lines, for the `logs` command."""

    def __init__(self, size: int = 500) -> None:
        super().__init__(logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Controls(Protocol):
    """What a remote command can make the agent do."""

    def restart(self) -> str: ...
    def reselect(self) -> str: ...
    def config(self) -> dict[str, Any]: ...


class Commands:
    def __init__(self, client: MqttClient, topics: Topics, device: str, messenger: Messenger,
                 controls: Controls) -> None:
        self.client, self.topics, self.device, self.messenger = client, topics, device, messenger
        self.controls = controls
        self.ring = RingLog()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def start(self) -> None:
        logging.getLogger().addHandler(self.ring)
        self.client.subscribe(self.topics.cmd_all(self.device), self._on_command)

    def _on_command(self, msg: mqtt.MQTTMessage) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        if msg.retain:
            # A retained command would run again at every start (a retained `restart` restart-loops the device).
            self.messenger.event("rejected", f"retained command {name!r} ignored (commands must not be "
                                       "retained; clear it with an empty retained message)", topic=msg.topic)
            return
        try:
            cmd = parse(Command, msg.payload, msg.topic)
        except BadPayload as exc:
            self.messenger.event("rejected", f"bad command: {exc}", topic=msg.topic)
            return
        if not self._first_time(cmd.request_id):
            return  # QoS 1 may deliver twice; a request runs once
        handlers = {"restart": self._restart, "reselect": self._reselect, "logs": self._logs,
                    "config": self._config}
        handler = handlers.get(name) if name in COMMANDS else None
        if handler is None:
            self._reply(msg, Reply(request_id=cmd.request_id, ok=False, error=f"unknown command {name!r}"))
            self.messenger.event("rejected", f"unknown command {name[:64]!r}", topic=msg.topic[:200])
            return
        self.messenger.event("command", f"{name} ({cmd.request_id})")
        try:
            reply = Reply(request_id=cmd.request_id, ok=True, result=handler(cmd.args))
        except (AgentError, RuntimesError, ValueError, TypeError, ArithmeticError) as exc:
            reply = Reply(request_id=cmd.request_id, ok=False, error=f"{name}: {exc}")
        self._reply(msg, reply)

    def _first_time(self, request_id: str) -> bool:
        with self._lock:
            if request_id in self._seen:
                return False
            self._seen[request_id] = None
            while len(self._seen) > SEEN_REQUESTS:
                self._seen.popitem(last=False)
            return True

    def _reply(self, msg: mqtt.MQTTMessage, reply: Reply) -> None:
        props = getattr(msg, "properties", None)
        response = getattr(props, "ResponseTopic", None) if props is not None else None
        payload = reply.model_dump_json().encode()
        if response:
            correlation = getattr(props, "CorrelationData", b"") or b""
            out = self.client.response_properties(response, correlation)
            self.client.publish(response, payload, qos=1, properties=out)
        else:
            self.client.publish(self.topics.reply(self.device, reply.request_id), payload,
                                      qos=1)

    def _restart(self, _args: dict[str, Any]) -> str:
        return self.controls.restart()

    def _reselect(self, _args: dict[str, Any]) -> str:
        return self.controls.reselect()

    def _logs(self, args: dict[str, Any]) -> list[str]:
        count = args.get("lines", 100)
        if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count):
            raise AgentError(f"'lines' must be a whole number, not {str(count)[:32]!r}")
        count = int(count)
        return list(self.ring.lines)[-max(1, min(count, 500)):]

    def _config(self, _args: dict[str, Any]) -> dict[str, Any]:
        return self.controls.config()
