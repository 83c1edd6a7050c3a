"""Update helpers shared by the fleet tests: wait for a version to serve, publish part of a bundle."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from typer.testing import CliRunner

from edgectl.app import app
from fleet.messages import Desired
from fleet.mqtt import BrokerSettings
from fleet.push import Pusher
from fleet.topics import Topics
from fleet.transfer import pack
from tests.support.broker import Broker
from tests.support.mqtt import Recorder


def push(broker: Broker, bundle: Path, device: str, *extra: str) -> list[dict[str, object]]:
    """`edgectl push … --json` through typer's CliRunner: each device's result."""
    result = CliRunner().invoke(app, ["push", str(bundle), "--device", device, "--broker", broker.url, "--timeout",
                                      "120", "--json", *extra])
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def serving(rec: Recorder, device: str, version: int, timeout: float = 90, since: int = 0) -> dict[str, object]:
    return rec.wait_for(lambda t, d: t == f"edge/{device}/status" and d["state"] == "online"
                        and (d.get("model") or {}).get("version") == version, timeout, since)


def publish_partial(broker: Broker, bundle: Path, device: str, upto: int | None,
                    tamper: int | None = None) -> Desired:
    pusher = Pusher(BrokerSettings(port=broker.port), Topics())
    pusher.connect()
    packed = pack(bundle)
    topics = Topics()
    mids = [pusher._publish(topics.bundle_manifest(packed.digest), packed.manifest.model_dump_json().encode())]
    count = len(packed.manifest.chunk_sha256)
    for i in range(count if upto is None else upto):
        data = packed.chunk(i)
        if i == tamper:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        mids.append(pusher._publish(topics.bundle_chunk(packed.digest, i), data))
    pusher._wait_acks(mids, 60)
    desired = Desired(digest=packed.digest, name="efficientnet-lite0", version=2, size=packed.manifest.size,
                      chunks=count)
    pusher.set_desired([device], desired)
    pusher.close()
    return desired


def wait_chunks(store: Path, count: int) -> None:
    wait = threading.Event()
    for _ in range(200):
        if sum(1 for _ in store.glob("*/*.chunk")) >= count:
            return
        wait.wait(0.1)
    raise AssertionError(f"chunks never reached {count}")
