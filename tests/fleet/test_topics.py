"""The one topic table: every topic a device uses parses back to its device and kind; ids and names that would
break a topic level are refused."""

from __future__ import annotations

import pytest

from fleet.topics import BUNDLES, DEFAULT_MODEL, Topics, valid_device_id, valid_model_name


def test_every_device_topic_parses_back() -> None:
    t = Topics("site-a")
    for topic, kind in [(t.status("d1"), "status"), (t.telemetry("d1"), "telemetry"), (t.events("d1"), "events"),
                        (t.results("d1"), "results"), (t.desired("d1"), "desired"),
                        (t.desired("d1", "faces"), "desired/faces"), (t.cmd("d1", "logs"), "cmd/logs"),
                        (t.reply("d1", "r1"), "reply/r1"), (t.snapshot("d1", "cam0"), "snapshots/cam0")]:
        assert t.parse(topic) == ("d1", kind)


def test_the_default_model_keeps_the_plain_desired_topic() -> None:
    assert Topics().desired("d1", DEFAULT_MODEL) == "edge/d1/desired"
    assert Topics().desired("d1", "faces") == "edge/d1/desired/faces"
    assert set(Topics().every_desired()) == {"edge/+/desired", "edge/+/desired/+"}


def test_bundles_and_foreign_topics_are_not_devices() -> None:
    t = Topics()
    assert t.parse(t.bundle_manifest("ab")) is None and t.parse(t.bundle_chunk("ab", 3)) is None
    assert t.parse("other/d1/status") is None and t.parse("edge/d1") is None
    assert t.bundle_all("ab") == f"edge/{BUNDLES}/ab/#"


@pytest.mark.parametrize("device", ["", "a/b", "a+b", "a#", "a b", BUNDLES, "x" * 65, "nul\0"])
def test_device_ids_that_break_a_topic_level_are_refused(device: str) -> None:
    assert not valid_device_id(device)


@pytest.mark.parametrize(("name", "ok"), [("faces", True), ("a.b-c_1", True), ("..", False), (".", False),
                                          ("a/b", False), ("+", False), ("x" * 33, False), ("", False)])
def test_model_names(name: str, ok: bool) -> None:
    assert valid_model_name(name) is ok
