"""`edgectl status` (the fleet at a glance) and `edgectl devices` (the devices this laptop knows)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fleet import registry
from fleet import status as status_mod
from fleet.errors import FleetError
from fleet.topics import Topics

from .broker import BrokerOpt, PrefixOpt, settings
from .output import emit_json, err, fail, number, pause

COLOURS = {"online": "green", "updating": "cyan", "degraded": "yellow"}
COLUMNS = ("device", "state", "seen", "model", "runtime", "on", "cams", "fps", "p95 ms", "glass ms", "carries",
           "unsure%", "drift", "cpu%", "°C", "update", "agent")


def status(broker: BrokerOpt = None, prefix: PrefixOpt = "edge",
           group: Annotated[str | None, typer.Option(help="Only devices in this group.")] = None,
           watch: Annotated[bool, typer.Option(help="Refresh every 2 s until Ctrl-C.")] = False,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The fleet at a glance; exit code 1 when a selected device is not online."""
    while True:
        try:
            table = status_mod.rows(status_mod.collect(settings(broker), Topics(prefix)), group)
        except (ConnectionError, FleetError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(table)
        else:
            _print(table)
        if not watch or pause(2.0):
            break
    raise typer.Exit(1 if status_mod.unhealthy(table) else 0)


def _print(table: list[dict[str, Any]]) -> None:
    out = Table(box=None)
    for col in COLUMNS:
        out.add_column(col)
    for r in table:
        colour = COLOURS.get(r["state"], "red")
        out.add_row(r["device"], f"[{colour}]{r['state']}[/{colour}]", f"{r['last_seen_s']:.0f}s", _model(r),
                    r["runtime"] or "-", r["device_kind"] or "-", *_cameras(r),
                    _percent(r["low_confidence_share"]), number(r["drift"], 2), number(r["cpu_pct"]),
                    number(r["temp_c"]), r["update_phase"] or "-", r["agent_version"] or "-")
    Console(width=None if sys.stdout.isatty() else 160).print(out)


def _cameras(row: dict[str, Any]) -> tuple[str, ...]:
    """Cameras connected of configured, fps, p95, the worst camera's p95 glass-to-result, and the capacity."""
    cams = row.get("cameras") or {}
    glass = [c["glass_p95_ms"] for c in cams.values() if c.get("glass_p95_ms") is not None]
    capacity = row.get("capacity")
    return (f"{sum(c['connected'] for c in cams.values())}/{len(cams)}" if cams else "-", number(row["fps"]),
            number(row["p95_ms"]), number(max(glass)) if glass else "-",
            str(capacity["cameras"]) if capacity else "-")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.0f}"


def _model(row: dict[str, Any]) -> str:
    model = f"{row['model']} v{row['version']}" if row["model"] else "-"
    return model + "".join(f" +{o['name']}" + (f" ({o['update_phase']})" if o.get("update_phase") else "")
                           for o in row.get("other_models", []))


def devices(forget: Annotated[str | None, typer.Option(help="Forget this device.")] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Devices this laptop knows (from earlier `edgectl status` runs)."""
    if forget:
        if not registry.forget(forget):
            raise fail(f"unknown device {forget!r}")
        err.print(f"forgot {forget}")
        return
    known = registry.load()
    if as_json:
        emit_json(known)
        return
    for name, info in sorted(known.items()):
        typer.echo(f"{name:24} groups: {','.join(info.get('groups', [])) or '-'}")
