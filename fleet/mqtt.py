"""The one paho-mqtt 2.x wrapper: MQTT 5 with a 3.1.1 fallback found by trying, TLS, LWT, subscriptions
re-made in on_connect and at QoS 0 unless asked (SUBSCRIBE_QOS), QoS capped at 1 (some brokers drop QoS 2
publishers), and failover across a list of broker nodes: a connection lost for FAILOVER_S moves to the next
node; when none answers, the round is tried again after a back-off capped at MAX_BACKOFF_S, so a node that
comes back is used within seconds."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties

from .errors import FleetError

log = logging.getLogger(__name__)
Handler = Callable[[mqtt.MQTTMessage], None]
Protocol = Literal["auto", "5", "3.1.1"]
FAILOVER_S = 2.0  # a lost connection paho has not restored by then: the node is gone, try the next
MAX_BACKOFF_S = 5.0  # between rounds over every node when none answers
# Our sessions are clean, so a QoS 1 subscription buys redelivery only within one TCP connection, and costs a
# durable queue pinned to one node on RabbitMQ (a reconnect through another node is refused while that node is
# down) and a replicated JetStream consumer per subscription on NATS. What must not be lost is retained (desired,
# manifests, chunks: re-read on subscribe), retried by its sender (commands, pings) or published at QoS 1 by us.
SUBSCRIBE_QOS = 0


@dataclass(frozen=True)
class BrokerSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    protocol: Protocol = "auto"
    keepalive: int = 30

    @classmethod
    def from_urls(cls, urls: str | Sequence[str], **extra: Any) -> list[BrokerSettings]:
        """One settings per node, in failover order: a comma-separated string or a list of URLs."""
        found = split_urls(urls)
        if not found:
            raise FleetError("no broker URL given")
        return [cls.from_url(url, **dict(extra)) for url in found]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, **extra: Any) -> BrokerSettings:
        u = parse_broker_url(url)
        # Credentials in the URL win over those given beside it (EDGECTL_USERNAME, a config's username).
        username, password = extra.pop("username", None), extra.pop("password", None)
        return cls(host=u.host, port=u.port, tls=u.tls, username=u.username or username,
                   password=u.password or password, **extra)


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None


SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
Brokers = BrokerSettings | Sequence[BrokerSettings]


def split_urls(urls: str | Sequence[str]) -> list[str]:
    """`--broker a,b --broker c` and `urls = ["a", "b"]` alike: every URL, in order."""
    items = [urls] if isinstance(urls, str) else list(urls)
    return [u.strip() for item in items for u in item.split(",") if u.strip()]


def parse_broker_url(url: str) -> BrokerUrl:
    """The one check of a broker URL, shared by `config check`, `run` and every `edgectl` command: a port of
    0 would connect to 1883, a broker the user never named; an out-of-range port would crash later."""
    text = url.strip()
    try:
        parsed = urlparse(text if "://" in text else f"mqtt://{text}")
        port = parsed.port
    except ValueError as exc:
        raise FleetError(f"broker URL {url!r}: {exc} (the port must be 1-65535)") from exc
    if parsed.scheme not in SCHEMES:
        raise FleetError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if not parsed.hostname:
        raise FleetError(f"broker URL {url!r}: no host")
    if port == 0 or (parsed.path not in ("", "/")) or parsed.query:
        why = "port 0 is not a port" if port == 0 else "a broker URL has no path or query"
        raise FleetError(f"broker URL {url!r}: {why}")
    tls = SCHEMES[parsed.scheme]
    return BrokerUrl(parsed.hostname, port or (8883 if tls else 1883), tls, parsed.username, parsed.password)


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass
class _Attempt:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    reason: str = ""


class MqttClient:
    def __init__(self, client_id: str, broker: Brokers, will: Will | None = None,
                 on_connect: Callable[[MqttClient], None] | None = None) -> None:
        self.brokers = [broker] if isinstance(broker, BrokerSettings) else list(broker)
        if not self.brokers:
            raise FleetError("no broker URL given")
        self.client_id, self.will, self._current = client_id, will, 0
        self.on_connect_hook = on_connect
        self.on_ack: Callable[[int], None] = lambda mid: None
        self.on_disconnect_hook: Callable[[], None] = lambda: None
        self.connected = threading.Event()
        first = self.brokers[0].protocol
        self.protocol: str | None = None if first == "auto" else first
        self._lost = threading.Event()
        self._subs: dict[str, tuple[int, Handler]] = {}
        self._lock = threading.RLock()
        self._client: mqtt.Client | None = None
        self._stop = threading.Event()
        self._attempt = _Attempt()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, wait_s: float = 10.0) -> bool:
        """Connect in the background (negotiating the protocol); True when connected within wait_s."""
        threading.Thread(target=self._negotiate, name=f"mqtt-{self.client_id}", daemon=True).start()
        return self.connected.wait(wait_s)

    @property
    def broker(self) -> BrokerSettings:
        """The node in use (or being tried)."""
        return self.brokers[self._current]

    def _negotiate(self) -> None:
        delay, start = 0.5, 0
        while not self._stop.is_set():
            for step in range(len(self.brokers)):
                self._current = (start + step) % len(self.brokers)
                if self._connect_here():
                    delay = 0.5
                    self._hold()
                    start = self._current + 1  # that node went away: the next one first
                    break
                if self._stop.is_set():
                    return
            else:
                log.info("no broker reachable (%s: %s); retrying in %.1f s",
                         ", ".join(b.address for b in self.brokers), self._attempt.reason, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, MAX_BACKOFF_S)

    def _connect_here(self) -> bool:
        for proto in (["5", "3.1.1"] if self.broker.protocol == "auto" else [self.broker.protocol]):
            if self._try(proto):
                self.protocol = proto
                return True
            if self._stop.is_set():
                return False
        return False

    def _hold(self) -> None:
        """Stay on this node while it serves; paho reconnects by itself after a blip, and a connection not
        back within FAILOVER_S is dropped so the next node is tried."""
        while not self._stop.is_set():
            self._lost.wait()
            if self._stop.is_set() or self.connected.wait(FAILOVER_S):
                continue
            log.warning("broker %s lost for %.0f s; failing over", self.broker.address, FAILOVER_S)
            with self._lock:
                client, self._client = self._client, None
            if client is not None:
                client.loop_stop()
            return

    def _try(self, proto: str, timeout: float = 5.0) -> bool:
        client = self._make(proto)
        self._attempt = attempt = _Attempt()
        with self._lock:
            self._client = client
        try:
            socket.getaddrinfo(self.broker.host, self.broker.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:  # say so, instead of a bare "no CONNACK"
            attempt.reason = f"cannot resolve host {self.broker.host!r}: {exc}"
            return False
        try:
            client.connect_async(self.broker.host, self.broker.port, self.broker.keepalive)
            client.loop_start()
        except (OSError, ValueError) as exc:
            attempt.reason = str(exc)
            return False
        attempt.done.wait(timeout)
        if attempt.ok:
            return True
        attempt.reason = attempt.reason or "no CONNACK"
        client.loop_stop()
        client.disconnect()
        return False

    def _make(self, proto: str) -> mqtt.Client:
        version = mqtt.MQTTv5 if proto == "5" else mqtt.MQTTv311
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=version)
        client.reconnect_delay_set(1, 30)
        client.max_inflight_messages_set(64)
        if self.broker.tls:
            client.tls_set(ca_certs=self.broker.ca_file, certfile=self.broker.cert_file,
                           keyfile=self.broker.key_file, cert_reqs=ssl.CERT_REQUIRED)
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        if self.will:
            client.will_set(self.will.topic, self.will.payload, self.will.qos, self.will.retain)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = lambda _c, _u, mid, _rc, _p: self.on_ack(mid)
        return client

    def stop(self, clean: bool = True) -> None:
        """Stop. clean=False drops the TCP connection without DISCONNECT, so the broker sends the LWT."""
        self._stop.set()
        self._lost.set()
        with self._lock:
            client = self._client
        if client is None:
            return
        if clean:
            client.disconnect()
        else:
            sock = client.socket()
            if sock is not None:
                sock.close()
        client.loop_stop()
        self.connected.clear()

    # -- callbacks (paho's network thread) ------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._attempt.reason = str(rc)
            self._attempt.done.set()
            return
        self.protocol = "5" if client.protocol == mqtt.MQTTv5 else "3.1.1"  # before anyone sees `connected`
        self._attempt.ok = True
        self._attempt.done.set()
        self._lost.clear()
        with self._lock:
            for topic, (qos, _) in self._subs.items():
                client.subscribe(topic, qos)
        self.connected.set()
        log.info("connected to %s (MQTT %s)", self.broker.address, self.protocol)
        if self.on_connect_hook:
            self.on_connect_hook(self)

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        self._attempt.reason = "connection refused or timed out"
        self._attempt.done.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self._attempt.reason = str(rc)
        self._attempt.done.set()
        self._lost.set()
        if self.connected.is_set() and not self._stop.is_set():  # our own stop is not news
            log.warning("disconnected from broker: %s", rc)
        self.connected.clear()
        self.on_disconnect_hook()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            handlers = [h for t, (_, h) in self._subs.items() if mqtt.topic_matches_sub(t, msg.topic)]
        for handler in handlers:
            try:
                handler(msg)
            except Exception:  # a bad handler must not kill paho's network thread
                log.exception("handler for %s failed", msg.topic)

    # -- API -----------------------------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler, qos: int = SUBSCRIBE_QOS) -> None:
        with self._lock:
            self._subs[topic] = (min(qos, 1), handler)
            client = self._client
        if client is not None and self.connected.is_set():
            client.subscribe(topic, min(qos, 1))

    def unsubscribe(self, topic: str) -> None:
        with self._lock:
            self._subs.pop(topic, None)
            client = self._client
        if client is not None and self.connected.is_set():
            client.unsubscribe(topic)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                properties: Properties | None = None) -> int | None:
        """Publish; the message id (PUBACK arrives through on_ack), or None when not connected."""
        with self._lock:
            client = self._client
        if client is None or not self.connected.is_set():
            return None
        if self.protocol != "5":
            properties = None
        info = client.publish(topic, payload, min(qos, 1), retain, properties=properties)
        return info.mid if info.rc == mqtt.MQTT_ERR_SUCCESS else None

    def response_properties(self, response_topic: str, correlation: bytes) -> Properties | None:
        if self.protocol != "5":
            return None
        from paho.mqtt.packettypes import PacketTypes

        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation
        return props
