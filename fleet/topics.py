"""The topic table, defined once and imported by the agent, the CLI and the tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "edge"
DEFAULT_MODEL = "default"  # the model whose desired state is `<prefix>/<device>/desired`
BUNDLES = "bundles"
FLEET = "_fleet"  # fleet-wide topics (the status ping); like BUNDLES, never a device id
RESERVED = (BUNDLES, FLEET)
# A device answers a ping after a random delay up to this, so ten thousand do not answer in one millisecond.
PING_JITTER_S = 0.3
KINDS = ("status", "telemetry", "events", "results", "desired")


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def status(self, device: str) -> str:
        return f"{self.prefix}/{device}/status"

    def telemetry(self, device: str) -> str:
        return f"{self.prefix}/{device}/telemetry"

    def events(self, device: str) -> str:
        return f"{self.prefix}/{device}/events"

    def results(self, device: str) -> str:
        return f"{self.prefix}/{device}/results"

    def snapshot(self, device: str, camera: str) -> str:
        """A JPEG of the frame a detection came from (raw bytes, QoS 0, not retained)."""
        return f"{self.prefix}/{device}/snapshots/{camera}"

    def sample(self, device: str, camera: str) -> str:
        """A low-confidence frame with its answer, for relabelling (JSON, QoS 1, through the outbox)."""
        return f"{self.prefix}/{device}/samples/{camera}"

    def desired(self, device: str, model: str = DEFAULT_MODEL) -> str:
        """The default model's desired state, or a named model's (`…/desired/<model>`), retained."""
        base = f"{self.prefix}/{device}/desired"
        return base if model == DEFAULT_MODEL else f"{base}/{model}"

    def every_desired(self) -> list[str]:
        return [self.every("desired"), f"{self.prefix}/+/desired/+"]

    def cmd(self, device: str, name: str) -> str:
        return f"{self.prefix}/{device}/cmd/{name}"

    def cmd_all(self, device: str) -> str:
        return f"{self.prefix}/{device}/cmd/+"

    def reply(self, device: str, request_id: str) -> str:
        """3.1.1 brokers have no response topic: replies go here, named by the request id."""
        return f"{self.prefix}/{device}/reply/{request_id}"

    def every(self, kind: str) -> str:
        return f"{self.prefix}/+/{kind}"

    def bundle_manifest(self, digest: str) -> str:
        return f"{self.prefix}/{BUNDLES}/{digest}/manifest"

    def bundle_chunk(self, digest: str, index: int) -> str:
        return f"{self.prefix}/{BUNDLES}/{digest}/chunk/{index}"

    def bundle_chunks(self, digest: str) -> str:
        return f"{self.prefix}/{BUNDLES}/{digest}/chunk/+"

    def bundle_all(self, digest: str) -> str:
        return f"{self.prefix}/{BUNDLES}/{digest}/#"

    def bundle_index(self) -> str:
        return f"{self.prefix}/{BUNDLES}/index"

    def all_bundles(self) -> str:
        return f"{self.prefix}/{BUNDLES}/+/manifest"

    def ping(self) -> str:
        """`edgectl status` asks every device to publish its status now: live messages reach a wildcard
        subscriber on every broker, retained ones do not (RabbitMQ) or stay on one node (clusters)."""
        return f"{self.prefix}/{FLEET}/ping"

    def parse(self, topic: str) -> tuple[str, str] | None:
        """(device, kind) of a per-device topic, or None (bundles, fleet-wide and foreign topics)."""
        parts = topic.split("/")
        if len(parts) < 3 or parts[0] != self.prefix or parts[1] in RESERVED:
            return None
        return parts[1], "/".join(parts[2:])


# The commands an agent answers on `cmd/<name>`; edgectl refuses others before it dials the broker.
COMMANDS = ("restart", "reselect", "logs", "config")
DEVICE_ID_RULE = "must be 1-64 characters without '/', '+', '#', spaces, and not 'bundles' or '_fleet'"


def valid_device_id(device: str) -> bool:
    """Device ids become topic levels: no wildcards, separators or the reserved bundles level."""
    return bool(device) and device not in RESERVED and len(device) <= 64 and not any(c in device for c in "/+#\0 ")


MODEL_NAME_RULE = "1-32 letters, digits, '_', '.' or '-'"


def valid_model_name(name: str) -> bool:
    """A model name becomes a topic level (`desired/<model>`) and a store folder."""
    return re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name) is not None and name not in (".", "..")
