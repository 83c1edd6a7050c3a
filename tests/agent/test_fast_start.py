"""Fast start on a real agent: a bundle never measured on this device serves on a safe candidate before its
selection ends, the selected candidate takes over without a gap in the results, and the next start serves
the cached choice at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import Broker
from tests.support.mqtt import FAST, Recorder, start_agent

pytestmark = [pytest.mark.slow, pytest.mark.cold_devices]


def _kinds(recorder: Recorder, device: str, since: int) -> list[tuple[str, dict[str, Any]]]:
    """Selections and results in arrival order, after `since`."""
    out = []
    for topic, doc, _ in recorder.messages[since:]:
        if topic == f"edge/{device}/results":
            out.append(("result", doc))
        elif topic == f"edge/{device}/events" and doc["kind"] in ("selection", "error", "camera"):
            out.append((doc["kind"], doc))
    return out


def _choice(event: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    sel = event["data"]["selected"]
    return sel["target"], sel["runtime"], sel["settings"]


def test_a_new_bundle_serves_before_its_selection_ends(own_broker: Broker, recorder: Recorder, bundle: Path,
                                                       media: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    agent = start_agent(own_broker, bundle, media, state, "fs1", env=FAST)
    try:
        final = recorder.wait_for(lambda t, d: t == "edge/fs1/events" and d["kind"] == "selection"
                                  and not d["data"]["provisional"], 120)
        recorder.wait_for(lambda t, d: t == "edge/fs1/results" and d["ts"] > final["ts"], 30)
    finally:
        agent.terminate()
        agent.wait(30)
    seen = _kinds(recorder, "fs1", 0)
    kinds = [k for k, _ in seen]
    first, switch = (i for i, k in enumerate(kinds) if k == "selection")  # results skip the outbox: any order
    assert seen[first][1]["data"]["provisional"] is True, seen[first]
    assert seen[first][1]["data"]["selected"]["precision"] == "fp32", seen[first]
    assert "result" in kinds[:switch] and "result" in kinds[switch + 1:], kinds  # served before and after
    assert "error" not in kinds and "camera" not in kinds, seen

    mark = recorder.mark()
    again = start_agent(own_broker, bundle, media, state, "fs1", env=FAST)
    try:
        first = recorder.wait_for(lambda t, d: t == "edge/fs1/events" and d["kind"] == "selection", 60, mark)
        assert first["data"]["cached"] is True and first["data"]["provisional"] is False, first
        assert _choice(first) == _choice(final), (first, final)
    finally:
        again.kill()
