"""Home Assistant MQTT discovery: a real agent with `--ha-discovery` on a real broker; the retained configs
read back and checked against the keys Home Assistant documents for MQTT sensors and updates, and their
templates rendered with Jinja2 (what Home Assistant uses) against the agent's real status payload."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jinja2
import pytest

from agent.reporting.homeassistant import UPDATE_TEMPLATE
from fleet.messages import ModelRef, Status
from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent

# From https://www.home-assistant.io/integrations/sensor.mqtt/ , /update.mqtt/ and /mqtt/#discovery-messages
ENTITY = {"availability", "availability_mode", "availability_template", "availability_topic", "device",
          "default_entity_id", "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
          "json_attributes_template", "json_attributes_topic", "name", "object_id", "origin", "payload_available",
          "payload_not_available", "platform", "qos", "unique_id"}
SENSOR = ENTITY | {"device_class", "expire_after", "force_update", "last_reset_value_template", "options",
                   "suggested_display_precision", "state_class", "state_topic", "unit_of_measurement",
                   "value_template"}
UPDATE = ENTITY | {"command_topic", "device_class", "display_precision", "latest_version_template",
                   "latest_version_topic", "payload_install", "release_summary", "release_url", "retain",
                   "state_topic", "title", "value_template"}
DEVICE = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
          "name", "serial_number", "suggested_area", "sw_version", "via_device"}
AVAILABILITY = {"payload_available", "payload_not_available", "topic", "value_template"}
ORIGIN = {"name", "sw_version", "support_url"}
UPDATE_STATE = {"installed_version", "latest_version", "title", "release_summary", "release_url", "entity_picture",
                "in_progress", "update_percentage"}


def _render(template: str, payload: dict[str, Any]) -> str:
    env = jinja2.Environment(undefined=jinja2.ChainableUndefined)
    env.filters["to_json"] = json.dumps  # Home Assistant's filter of that name
    return env.from_string(template).render(value_json=payload)


def _check(component: str, config: dict[str, Any]) -> None:
    allowed = SENSOR if component == "sensor" else UPDATE
    assert set(config) <= allowed, set(config) - allowed
    assert config["unique_id"] and config["state_topic"]
    assert set(config["device"]) <= DEVICE and config["device"]["identifiers"]
    assert set(config["origin"]) <= ORIGIN and config["origin"]["name"]
    for item in config["availability"]:
        assert set(item) <= AVAILABILITY
    if config.get("device_class") == "enum":
        assert "state_class" not in config and "unit_of_measurement" not in config and config["options"]


def test_discovery_configs_describe_the_device(own_broker: Broker, bundle: Path, media: Path, tmp_path: Path) -> None:
    agent = start_agent(own_broker, bundle, media, tmp_path / "state", "ha.dev-1", "--ha-discovery", env=FAST)
    try:
        live = Recorder(own_broker.port, ["edge/#"], client_id="live")
        status = live.wait_for(lambda t, d: t == "edge/ha.dev-1/status" and d.get("metrics", {}).get("fps"), 90)
        seen = Recorder(own_broker.port, ["homeassistant/#"], client_id="ha")  # retained: read back afterwards
        seen.wait_for(lambda t, d: t.startswith("homeassistant/update/"), 10)
        configs = {t: d for t, d, retained in seen.messages if retained}
        assert {t.split("/")[1] for t in configs} == {"sensor", "update"}
        for topic, config in configs.items():
            assert topic.startswith("homeassistant/") and topic.split("/")[2] == "edgectl_ha_dev-1", topic
            _check(topic.split("/")[1], config)
        values = {t.split("/")[3]: _render(c["value_template"], status) for t, c in configs.items()
                  if t.split("/")[1] == "sensor"}
        assert values["state"] == "online" and float(values["fps"]) > 0
        assert values["model"] == f"{status['model']['name']} v{status['model']['version']}"
        update = json.loads(_render(configs[_topic(configs, "update")]["value_template"], status))
        assert update["installed_version"] == str(status["model"]["version"]) and update["in_progress"] is False
        _birth_resends(own_broker, seen, len(seen.messages))
        live.close()
        seen.close()
    finally:
        agent.terminate()
        agent.wait(30)


def _topic(configs: dict[str, Any], component: str) -> str:
    return next(t for t in configs if t.split("/")[1] == component)


def _birth_resends(broker: Broker, seen: Recorder, before: int) -> None:
    """Home Assistant's birth message on <prefix>/status makes the agent send its configs again."""
    seen.client.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
    seen.wait_for(lambda t, d: t.startswith("homeassistant/update/"), 10, since=before + 1)


@pytest.mark.parametrize(("state", "to", "progress", "want"), [
    ("online", None, None, {"installed_version": "3", "latest_version": "3", "in_progress": False,
                            "update_percentage": None}),
    ("updating", 4, 42.5, {"installed_version": "3", "latest_version": "4", "in_progress": True,
                           "update_percentage": 42.5}),
])
def test_the_update_entity_reads_the_transfer(state: str, to: int | None, progress: float | None,
                                              want: dict[str, Any]) -> None:
    status = Status(device="d", state=state, model=ModelRef(name="m", version=3, digest="0" * 64),  # type: ignore[arg-type]
                    update_to=to, update_progress=progress, ts=time.time())
    got = json.loads(_render(UPDATE_TEMPLATE, json.loads(status.model_dump_json())))
    assert set(got) <= UPDATE_STATE
    assert {k: got[k] for k in want} == want and got["title"] == "m"
