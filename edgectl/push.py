"""`edgectl push` (a bundle to devices, with canaries) and `edgectl gc` (retained bundles nobody wants)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fleet import remote, web
from fleet import status as status_mod
from fleet.errors import FleetError
from fleet.push import Progress, Pusher, rollout
from fleet.topics import DEFAULT_MODEL, MODEL_NAME_RULE, Topics, valid_model_name
from runtimes.bundle import open_bundle
from runtimes.errors import RuntimesError

from .broker import BrokerOpt, PrefixOpt, settings
from .output import emit_json, err, fail


def push(bundle: Annotated[Path, typer.Argument(help="Bundle directory (from edgectl build).")],
         device: Annotated[list[str] | None, typer.Option(help="Device id (repeatable).")] = None,
         group: Annotated[str | None, typer.Option(help="Every device that reports this group.")] = None,
         broker: BrokerOpt = None, prefix: PrefixOpt = "edge",
         canary: Annotated[int, typer.Option(help="Update this many devices first.")] = 0,
         abort_on: Annotated[float, typer.Option(help="Stop when more than this % of canaries fail.")] = 0.0,
         timeout: Annotated[float, typer.Option(help="Seconds to wait for the devices.")] = 300.0,
         no_wait: Annotated[bool, typer.Option("--no-wait", help="Publish and return.")] = False,
         force: Annotated[bool, typer.Option(help="Allow a lower version (downgrade).")] = False,
         http: Annotated[str | None, typer.Option(help="Base URL of a web server the devices fetch the bundle "
                                                       "from (instead of retained chunks on the broker).")] = None,
         http_dir: Annotated[Path | None, typer.Option(help="Lay the bundle out here first: the folder that web "
                                                           "server serves as --http.")] = None,
         http_ca: Annotated[Path | None, typer.Option(help="CA of an https server's certificate, for the check "
                                                          "from here (devices: http_ca_file).")] = None,
         min_agreement: Annotated[float | None, typer.Option(
             min=0.0, max=1.0, help="Roll back a device where the new model agrees with the one it replaces less "
                                    "than this, on live frames during the soak (the task's measure).")] = None,
         max_p95_ratio: Annotated[float | None, typer.Option(
             min=0.0, help="Roll back a device where the new model's p95 latency on its cameras during the soak is "
                           "more than this many times the previous model's (e.g. 1.25).")] = None,
         min_fps_ratio: Annotated[float | None, typer.Option(
             min=0.0, max=1.0, help="Roll back a device where the new model's fps during the soak is below this "
                                    "share of the previous model's (e.g. 0.9).")] = None,
         model: Annotated[str, typer.Option(help="Which model of the devices to update: a name from their "
                                                 "[models], or 'default'.")] = DEFAULT_MODEL,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Publish a bundle and the desired state; follow each device until it commits or fails."""
    topics = Topics(prefix)
    if not device and not group:
        raise fail("name devices with --device ID or --group G")
    if not valid_model_name(model):
        raise fail(f"--model {model!r}: {MODEL_NAME_RULE}")
    _verify(bundle)  # these two are checked before any connection
    source = _source(http, http_ca)
    targets = list(device or []) + (_group_devices(broker, topics, group) if group else [])
    if not targets:
        raise fail(f"--group {group}: no device reports this group")
    pusher = Pusher(settings(broker), topics, on_progress=_show, model=model)
    try:
        pusher.connect()
        with err.status(f"publishing {bundle}"):
            packed, desired = pusher.publish_bundle(bundle, source, http_dir)
        where = f"at {http}" if http else "in retained chunks"
        err.print(f"bundle {packed.digest[:12]}: {packed.manifest.size / 1e6:.1f} MB "
                  f"({len(packed.manifest.chunk_sha256)} chunks) {where}")
        desired = desired.model_copy(update={"force": force, "min_agreement": min_agreement,
                                             "max_p95_ratio": max_p95_ratio or None, "min_fps_ratio": min_fps_ratio})
        results = rollout(pusher, desired, targets, canary, abort_on, timeout, not no_wait)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # a bundle that does not verify, a broken broker connection
        raise fail(f"{bundle}: {exc}") from exc
    finally:
        pusher.close()
    _report(results, as_json)
    raise typer.Exit(0 if all(r["result"] in ("committed", "pending") for r in results) else 1)


def _report(results: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(results)
        return
    for r in results:
        err.print(f"{r['device']:20} {r['result']:12} {r['seconds']:6.1f} s  {_figures(r)}{r['reason'] or ''}")


def _figures(r: dict[str, Any]) -> str:
    """What the soak measured against the previous model, when it did."""
    out = f"agreement {r['agreement']:.3f}  " if r.get("agreement") is not None else ""
    if r.get("p95_ms") is not None and r.get("previous_p95_ms"):
        out += f"p95 {r['p95_ms']:.1f} ms (was {r['previous_p95_ms']:.1f})  "
    if r.get("fps") is not None and r.get("previous_fps"):
        out += f"{r['fps']:.1f} fps (was {r['previous_fps']:.1f})  "
    return out


def _verify(bundle: Path) -> None:
    """A bundle that does not open and verify here is refused before the broker is dialled."""
    try:
        open_bundle(bundle)
    except (RuntimesError, OSError) as exc:
        raise fail(f"{bundle}: {exc}") from exc


def gc(broker: BrokerOpt = None, prefix: PrefixOpt = "edge",
       wait: Annotated[float, typer.Option(help="Seconds to gather retained messages.")] = 2.0) -> None:
    """Clear retained bundles that no device desires any more."""
    topics = Topics(prefix)
    try:
        found = status_mod.collect(settings(broker), topics)
    except (ConnectionError, FleetError) as exc:
        raise fail(str(exc)) from exc
    devices = {d: [m.name for m in s.other_models] for d, s in found.items()}
    desired, bundles = remote.retained_bundles(settings(broker), topics, wait, devices)
    stale = {d: n for d, n in bundles.items() if d not in desired}
    remote.clear_bundles(settings(broker), topics, stale, {d: n for d, n in bundles.items() if d in desired})
    err.print(f"cleared {len(stale)} bundle(s); {len(bundles) - len(stale)} still desired")


def _source(http: str | None, ca: Path | None) -> web.HttpSource | None:
    if http is None:
        return None
    if not http.startswith(("http://", "https://")):
        raise fail(f"--http {http!r}: an http:// or https:// base URL")
    if ca is not None and not ca.is_file():
        raise fail(f"--http-ca {ca}: no such file")
    return web.HttpSource(http, str(ca) if ca else None)


def _show(p: Progress) -> None:
    err.print(f"  {p.device}: {p.phase}" + (f" ({p.reason})" if p.reason else ""), highlight=False)


def _group_devices(broker: list[str] | None, topics: Topics, group: str) -> list[str]:
    return [d for d, s in status_mod.collect(settings(broker), topics).items() if group in s.groups]
