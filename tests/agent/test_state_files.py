"""The agent's own files, damaged every way a disk or a person can damage them: each is read as a safe empty
state with a message that names the file, never an exception (property-based: hypothesis writes the bytes)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.inference.selection import load_cached
from agent.reporting.outbox import Outbox
from agent.update.store import Store, UpdateRecord

SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                        max_size=4), max_leaves=12)
CONTENT = st.one_of(st.binary(max_size=300), JSON.map(lambda v: json.dumps(v).encode()),
                    st.fixed_dictionaries({"phase": st.text(max_size=12), "digest": st.text(max_size=70),
                                           "desired": JSON, "done": JSON}).map(lambda v: json.dumps(v).encode()))
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FAST
@given(content=CONTENT, name=st.sampled_from(["current.json", "update.json"]))
def test_store_files_never_raise(tmp_path_factory: object, content: bytes, name: str) -> None:
    root = tmp_path_factory.mktemp("store")  # type: ignore[attr-defined]
    (root / name).write_bytes(content)
    said: list[tuple[str, Path]] = []
    store = Store(root, on_damage=lambda message, path: said.append((message, path)))
    pointer, state = store.pointer(), store.state()
    assert store.start_roots(None) == [] or pointer.current is not None
    if said:
        assert said[0][1] == root / name and name in said[0][0]
        assert pointer.current is None if name == "current.json" else state == UpdateRecord()
    store.in_use()
    store.prune()


@FAST
@given(content=CONTENT)
def test_selection_cache_never_raises(tmp_path_factory: object, content: bytes) -> None:
    path = tmp_path_factory.mktemp("sel") / "cache.json"  # type: ignore[attr-defined]
    path.write_bytes(content)
    assert load_cached(path) is None or load_cached(path) is not None  # no exception either way


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(min_size=1, max_size=2000))
def test_outbox_file_damage_never_raises(tmp_path_factory: object, content: bytes) -> None:
    path = tmp_path_factory.mktemp("ob") / "outbox.db"  # type: ignore[attr-defined]
    path.write_bytes(content)
    box = Outbox(path)
    box.put("t", b"x")
    assert box.depth() == 1 or box.problem is not None
    box.close()


def test_read_only_state_dir_outbox_lives_in_memory(tmp_path: Path) -> None:
    """A directory the agent cannot create files in (as a non-root agent sees a read-only disk)."""
    box = Outbox(Path("/proc/edgectl-no-such-dir/outbox.db"))
    box.put("t", b"x")
    assert box.problem is not None and "in memory" in box.problem and box.depth() == 1
