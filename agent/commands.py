"""Remote commands on edge/<device>/cmd/<name>: restart, reselect, logs, config. Replies go to the MQTT 5
response topic with its correlation data, or (3.1.1) to edge/<device>/reply/<request_id>."""

from __future__ import annotations

import collections
import logging
import math
import threading
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from fleet.messages import BadPayload, Command, Reply, parse
from fleet.topics import COMMANDS
from runtimes.errors import RuntimesError

from .errors import AgentError

if TYPE_CHECKING:
    from .daemon import Agent

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


class Commands:
    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.ring = RingLog()
        self.exit_code = 0
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def start(self) -> None:
        logging.getLogger().addHandler(self.ring)
        self.agent.client.subscribe(self.agent.topics.cmd_all(self.agent.cfg.device_id), self._on_command)

    def _on_command(self, msg: mqtt.MQTTMessage) -> None:
        name = msg.topic.rsplit("/", 1)[-1]
        if msg.retain:
            # A retained command would run again at every start (a retained `restart` restart-loops the device).
            self.agent.messenger.event("rejected", f"retained command {name!r} ignored (commands must not be "
                                       "retained; clear it with an empty retained message)", topic=msg.topic)
            return
        try:
            cmd: Command = parse(Command, msg.payload, msg.topic)
        except BadPayload as exc:
            self.agent.messenger.event("rejected", f"bad command: {exc}", topic=msg.topic)
            return
        if not self._first_time(cmd.request_id):
            return  # QoS 1 may deliver twice; a request runs once
        handlers = {"restart": self._restart, "reselect": self._reselect, "logs": self._logs,
                    "config": self._config}
        handler = handlers.get(name) if name in COMMANDS else None
        if handler is None:
            self._reply(msg, Reply(request_id=cmd.request_id, ok=False, error=f"unknown command {name!r}"))
            self.agent.messenger.event("rejected", f"unknown command {name[:64]!r}", topic=msg.topic[:200])
            return
        self.agent.messenger.event("command", f"{name} ({cmd.request_id})")
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
            out = self.agent.client.response_properties(response, correlation)
            self.agent.client.publish(response, payload, qos=1, properties=out)
        else:
            self.agent.client.publish(self.agent.topics.reply(self.agent.cfg.device_id, reply.request_id), payload,
                                      qos=1)

    def _restart(self, _args: dict[str, Any]) -> str:
        self.exit_code = RESTART_EXIT
        threading.Timer(0.5, self.agent.stop_event.set).start()  # after the reply is out
        return "restarting"

    def _reselect(self, _args: dict[str, Any]) -> str:
        current = self.agent.current()
        if current is None:
            raise AgentError("no model to reselect")
        threading.Thread(target=self._do_reselect, args=(current,), name="reselect", daemon=True).start()
        return "reselecting in the background; the current runtime serves until the new choice is ready"

    def _do_reselect(self, bundle: Any) -> None:
        try:
            self.agent.swap(self.agent.prepare(bundle, force_select=True))
        except (AgentError, RuntimesError) as exc:
            self.agent.messenger.event("error", f"reselect failed: {exc}")

    def _logs(self, args: dict[str, Any]) -> list[str]:
        count = args.get("lines", 100)
        if isinstance(count, bool) or not isinstance(count, int | float) or not math.isfinite(count):
            raise AgentError(f"'lines' must be a whole number, not {str(count)[:32]!r}")
        count = int(count)
        return list(self.ring.lines)[-max(1, min(count, 500)):]

    def _config(self, _args: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = self.agent.cfg.model_dump(mode="json")
        if data.get("broker", {}).get("password"):
            data["broker"]["password"] = "***"
        return data
