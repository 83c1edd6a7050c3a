"""Selection helpers shared by the tests and the benchmarks."""

from __future__ import annotations

from pathlib import Path

from agent.inference import selection


def decided_with_every_core(state: Path) -> str:
    """Make an agent's cached decision the one a device with spare cores makes at boot: the chosen artifact and
    runtime with every core. (On this 2-core VM, with the camera decoding, one thread already wins at boot,
    and a competitor for a core would leave nothing better to switch to.) Returns the candidate's key."""
    path = next((state / "selection").glob("*.json"))
    sel = selection.load_cached(path)
    if sel is None:
        raise RuntimeError(f"{path}: no cached decision")
    cores = max(int(c.settings.get("threads", 1)) for c in sel.candidates)
    full = [c for c in sel.candidates if c.status == "ok" and c.settings.get("threads") == cores]
    sel.selected = next((c for c in full if (c.target, c.runtime) == (sel.selected.target, sel.selected.runtime)),
                        full[0])
    selection.save(path, sel)
    return sel.selected.key
