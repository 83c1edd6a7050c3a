"""Talking to devices besides updates: a remote command and its reply, and the retained bundles on the broker."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import Any

from .errors import FleetError
from .messages import BundleIndex, BundleManifest, Command, Desired
from .mqtt import Brokers, MqttClient
from .topics import Topics


def request(settings: Brokers, topics: Topics, device: str, name: str, args: dict[str, Any],
            timeout: float) -> dict[str, Any]:
    """A command and its reply: the MQTT 5 response topic, or the 3.1.1 reply topic named by request id."""
    request_id = uuid.uuid4().hex[:16]
    got: dict[str, Any] = {}
    done = threading.Event()
    client = MqttClient(f"edgectl-cmd-{request_id[:8]}", settings)
    reply_topic = topics.reply(device, request_id)

    def on_reply(msg: Any) -> None:
        got.update(json.loads(msg.payload))
        done.set()

    client.subscribe(reply_topic, on_reply)
    if not client.start():
        raise FleetError("cannot reach the broker")
    payload = Command(request_id=request_id, args=args).model_dump_json().encode()
    props = client.response_properties(reply_topic, request_id.encode())
    client.publish(topics.cmd(device, name), payload, qos=1, properties=props)
    ok = done.wait(timeout)
    client.stop()
    if not ok:
        raise FleetError(f"{device} did not answer {name!r} within {timeout:.0f} s")
    return got


def retained_bundles(settings: Brokers, topics: Topics, wait_s: float, devices: dict[str, list[str]],
                     ) -> tuple[set[str], dict[str, int]]:
    """The digests some device desires, and every bundle on the broker (digest → chunk count). Exact topics
    (each known device's desired states, the bundle index) beside the wildcards, since some brokers deliver
    retained messages to exact subscriptions only."""
    desired: set[str] = set()
    bundles: dict[str, int] = {}
    client = MqttClient(f"edgectl-gc-{uuid.uuid4().hex[:8]}", settings)

    def on_desired(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            desired.add(Desired.model_validate_json(msg.payload).digest)

    def on_manifest(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            m = BundleManifest.model_validate_json(msg.payload)
            bundles[m.digest] = len(m.chunk_sha256)

    def on_index(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            bundles.update(BundleIndex.model_validate_json(msg.payload).bundles)

    for pattern in [*topics.every_desired(), *_desired_topics(topics, devices)]:
        client.subscribe(pattern, on_desired)
    client.subscribe(topics.all_bundles(), on_manifest)
    client.subscribe(topics.bundle_index(), on_index)
    client.start()
    threading.Event().wait(wait_s)  # MQTT has no end-of-retained marker
    client.stop()
    return desired, bundles


def _desired_topics(topics: Topics, devices: dict[str, list[str]]) -> list[str]:
    return [t for device, models in devices.items()
            for t in [topics.desired(device), *(topics.desired(device, m) for m in models)]]


def clear_bundles(settings: Brokers, topics: Topics, stale: dict[str, int], keep: dict[str, int]) -> None:
    """Clear the retained chunks and manifest of each stale bundle; the index keeps the rest."""
    client = MqttClient(f"edgectl-gc-{uuid.uuid4().hex[:8]}", settings)
    client.start()
    for digest, chunks in stale.items():
        for i in range(chunks):
            client.publish(topics.bundle_chunk(digest, i), b"", retain=True)
        client.publish(topics.bundle_manifest(digest), b"", retain=True)
    client.publish(topics.bundle_index(), BundleIndex(bundles=keep).model_dump_json().encode(), retain=True)
    threading.Event().wait(0.5)  # let the last publishes leave before disconnecting
    client.stop()


def add_to_index(client: MqttClient, topics: Topics, digest: str, chunks: int, wait_s: float = 1.0) -> None:
    """Read the retained index (an exact topic: every broker delivers it), add a bundle, publish it back."""
    got: list[BundleIndex] = []
    arrived = threading.Event()

    def on_index(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            got.append(BundleIndex.model_validate_json(msg.payload))
        arrived.set()

    client.subscribe(topics.bundle_index(), on_index)
    arrived.wait(wait_s)  # nothing retained yet: the first bundle starts the index
    client.unsubscribe(topics.bundle_index())
    index = got[-1] if got else BundleIndex()
    index.bundles[digest] = chunks
    client.publish(topics.bundle_index(), index.model_dump_json().encode(), qos=1, retain=True)
