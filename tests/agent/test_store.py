"""The store shared by a device's models: each model's own pointers, bundles kept while any model needs them."""

from __future__ import annotations

from pathlib import Path

from agent.update.store import Store, UpdateRecord

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _bundle(store: Store, digest: str) -> None:
    store.bundle_dir(digest).mkdir(parents=True)


def test_models_keep_their_own_pointers(tmp_path: Path) -> None:
    default, faces = Store(tmp_path), Store(tmp_path, "models/faces")
    for digest in (A, B):
        _bundle(default, digest)
    default.commit(A)
    faces.commit(B)
    assert default.current() == default.bundle_dir(A) and faces.current() == faces.bundle_dir(B)
    assert (tmp_path / "current.json").is_file() and (tmp_path / "models" / "faces" / "current.json").is_file()


def test_prune_and_discard_spare_what_another_model_serves(tmp_path: Path) -> None:
    default, faces = Store(tmp_path), Store(tmp_path, "models/faces")
    for digest in (A, B, C):
        _bundle(default, digest)
    faces.commit(B)
    faces.set_state(UpdateRecord(digest=C, phase="fetching"))  # the faces model is fetching C
    default.commit(A)
    default.prune()
    assert {p.name for p in (tmp_path / "bundles").iterdir()} == {A, B, C}
    default.discard_bundle(B)  # a refused update of the default model that happens to be faces' current
    assert default.bundle_dir(B).is_dir()
    faces.discard_bundle(C)  # faces gives up its own transfer: C goes
    assert not faces.bundle_dir(C).exists()
