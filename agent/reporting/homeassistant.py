"""Home Assistant MQTT discovery (opt-in, `[homeassistant] enabled` or `edge-agent run --ha-discovery`).

Retained configs under `<prefix>/<component>/<node>/<object>/config` describe the device as sensors and an
`update` entity. Every entity reads the agent's own retained status topic through a template, so Home
Assistant needs nothing else and the agent publishes nothing extra per frame; availability follows the
status's `state` (the agent's will sets it to `offline`). Configs are re-sent when Home Assistant announces
itself on `<prefix>/status`, as its documentation asks."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from fleet.mqtt import MqttClient
from fleet.topics import Topics

log = logging.getLogger(__name__)
BIRTH = "online"  # Home Assistant's birth message on <prefix>/status


@dataclass(frozen=True)
class Sensor:
    key: str
    name: str
    template: str
    unit: str | None = None
    device_class: str | None = None
    numeric: bool = True


SENSORS = (
    Sensor("state", "State", "{{ value_json.state }}", device_class="enum", numeric=False),
    Sensor("fps", "Frames per second", "{{ value_json.metrics.fps }}", unit="fps"),
    Sensor("p95_ms", "Latency p95", "{{ value_json.metrics.p95_ms }}", unit="ms", device_class="duration"),
    Sensor("cpu_pct", "CPU", "{{ value_json.metrics.cpu_pct }}", unit="%"),
    Sensor("temp_c", "Temperature", "{{ value_json.metrics.temp_c }}", unit="°C", device_class="temperature"),
    Sensor("model", "Model", "{{ (value_json.model.name ~ ' v' ~ value_json.model.version) "
           "if value_json.model else 'none' }}", numeric=False),
    Sensor("runtime", "Runtime", "{{ (value_json.runtime.runtime ~ ' ' ~ value_json.runtime.target) "
           "if value_json.runtime else 'none' }}", numeric=False),
)
STATES = ["online", "offline", "updating", "degraded"]
# The update entity's state as the JSON Home Assistant's MQTT update platform reads: installed and latest
# version, whether an update runs, and how far its transfer is.
UPDATE_TEMPLATE = (
    "{% set m = value_json.model %}"
    "{% set installed = (m.version | string) if m else none %}"
    "{{ {'installed_version': installed,"
    " 'latest_version': (value_json.update_to | string) if value_json.update_to else installed,"
    " 'title': m.name if m else 'model',"
    " 'in_progress': value_json.state == 'updating',"
    " 'update_percentage': value_json.update_progress} | to_json }}")
AVAILABILITY = "{{ 'offline' if value_json.state == 'offline' else 'online' }}"


def node_id(device: str) -> str:
    """Discovery allows [a-zA-Z0-9_-] in the node id; device ids may also hold dots."""
    return "edgectl_" + re.sub(r"[^A-Za-z0-9_-]", "_", device)


class Discovery:
    def __init__(self, client: MqttClient, topics: Topics, device: str, version: str, prefix: str) -> None:
        self.client, self.topics, self.device, self.version, self.prefix = client, topics, device, version, prefix

    def start(self) -> None:
        """Re-send on Home Assistant's birth; the subscription is re-made on every connect."""
        self.client.subscribe(f"{self.prefix}/status", self._on_birth)

    def _on_birth(self, msg: mqtt.MQTTMessage) -> None:
        if msg.payload == BIRTH.encode():
            self.publish()

    def publish(self) -> None:
        for topic, config in self.configs():
            self.client.publish(topic, json.dumps(config).encode(), qos=1, retain=True)

    def configs(self) -> list[tuple[str, dict[str, object]]]:
        node = node_id(self.device)
        out = [(f"{self.prefix}/sensor/{node}/{s.key}/config", self._sensor(s, node)) for s in SENSORS]
        out.append((f"{self.prefix}/update/{node}/model/config", self._update(node)))
        return out

    def _sensor(self, s: Sensor, node: str) -> dict[str, object]:
        config = {**self._common(node, s.key, s.name), "value_template": s.template}
        if s.unit:
            config["unit_of_measurement"] = s.unit
        if s.device_class:
            config["device_class"] = s.device_class
        if s.numeric:
            config["state_class"] = "measurement"
        if s.device_class == "enum":
            config["options"] = STATES
        return config

    def _update(self, node: str) -> dict[str, object]:
        return {**self._common(node, "model", "Model update"), "value_template": UPDATE_TEMPLATE,
                "device_class": "firmware", "entity_category": "diagnostic"}

    def _common(self, node: str, key: str, name: str) -> dict[str, object]:
        status = self.topics.status(self.device)
        return {
            "name": name, "unique_id": f"{node}_{key}", "state_topic": status,
            "availability": [{"topic": status, "value_template": AVAILABILITY}],
            "device": {"identifiers": [node], "name": self.device, "manufacturer": "edgectl",
                       "model": "edge-agent", "sw_version": self.version},
            "origin": {"name": "edgectl", "sw_version": self.version},
        }
