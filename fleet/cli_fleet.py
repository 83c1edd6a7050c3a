"""The fleet commands of `edgectl`: status, push, gc, devices, cmd, schema."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from . import registry
from . import status as status_mod

# fleet.cli defines app, err, fail and emit_json before it imports this module.
from .cli import app, emit_json, err, fail
from .errors import FleetError
from .messages import BundleManifest, Command, Desired, schemas
from .mqtt import BrokerSettings, MqttClient
from .push import Progress, Pusher, rollout
from .topics import COMMANDS, DEVICE_ID_RULE, MODEL_NAME_RULE, Topics, valid_device_id, valid_model_name

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
BrokerOpt = Annotated[str, typer.Option(envvar="EDGECTL_BROKER", help="mqtt://HOST:PORT or mqtts://…")]
PrefixOpt = Annotated[str, typer.Option(envvar="EDGECTL_PREFIX", help="Topic prefix.")]


CREDENTIAL_ENV = {"ca_file": "EDGECTL_CA_FILE", "cert_file": "EDGECTL_CERT_FILE", "key_file": "EDGECTL_KEY_FILE",
                  "username": "EDGECTL_USERNAME"}


def _settings(url: str) -> BrokerSettings:
    """The broker URL plus the operator's credentials from the environment (see docs/security.md): a client
    certificate for a broker with require_certificate, or a username and a password file."""
    extra: dict[str, str] = {key: os.environ[var] for key, var in CREDENTIAL_ENV.items() if os.environ.get(var)}
    password_file = os.environ.get("EDGECTL_PASSWORD_FILE")
    if password_file:
        try:
            extra["password"] = Path(password_file).read_text().strip()
        except OSError as exc:
            raise fail(f"EDGECTL_PASSWORD_FILE={password_file}: cannot read ({exc.strerror})") from exc
    for key in ("ca_file", "cert_file", "key_file"):
        if key in extra and not Path(extra[key]).is_file():
            raise fail(f"{CREDENTIAL_ENV[key]}={extra[key]}: no such file")
    try:
        return BrokerSettings.from_url(url, **extra)
    except FleetError as exc:
        raise fail(f"--broker: {exc}") from exc


@app.command()
def status(broker: BrokerOpt = DEFAULT_BROKER, prefix: PrefixOpt = "edge",
           group: Annotated[str | None, typer.Option(help="Only devices in this group.")] = None,
           watch: Annotated[bool, typer.Option(help="Refresh every 2 s until Ctrl-C.")] = False,
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The fleet at a glance; exit code 1 when a selected device is not online."""
    while True:
        try:
            table = status_mod.rows(status_mod.collect(_settings(broker), Topics(prefix)), group)
        except (ConnectionError, FleetError) as exc:
            raise fail(str(exc)) from exc
        if as_json:
            emit_json(table)
        else:
            _print_status(table)
        if not watch or _pause(2.0):
            break
    raise typer.Exit(1 if status_mod.unhealthy(table) else 0)


def _print_status(table: list[dict[str, Any]]) -> None:
    out = Table(box=None)
    for col in ("device", "state", "seen", "model", "runtime", "on", "fps", "p95 ms", "cpu%", "°C", "update",
                "agent"):
        out.add_column(col)
    colours = {"online": "green", "updating": "cyan", "degraded": "yellow"}
    for r in table:
        colour = colours.get(r["state"], "red")
        model = f"{r['model']} v{r['version']}" if r["model"] else "-"
        model += "".join(f" +{o['name']}" + (f" ({o['update_phase']})" if o.get("update_phase") else "")
                         for o in r.get("other_models", []))
        out.add_row(r["device"], f"[{colour}]{r['state']}[/{colour}]", f"{r['last_seen_s']:.0f}s", model,
                    r["runtime"] or "-", r["device_kind"] or "-", _n(r["fps"]), _n(r["p95_ms"]),
                    _n(r["cpu_pct"]), _n(r["temp_c"]), r["update_phase"] or "-", r["agent_version"] or "-")
    import sys

    from rich.console import Console

    Console(width=None if sys.stdout.isatty() else 160).print(out)


@app.command()
def push(bundle: Annotated[Path, typer.Argument(help="Bundle directory (from edgectl build).")],
         device: Annotated[list[str] | None, typer.Option(help="Device id (repeatable).")] = None,
         group: Annotated[str | None, typer.Option(help="Every device that reports this group.")] = None,
         broker: BrokerOpt = DEFAULT_BROKER, prefix: PrefixOpt = "edge",
         canary: Annotated[int, typer.Option(help="Update this many devices first.")] = 0,
         abort_on: Annotated[float, typer.Option(help="Stop when more than this % of canaries fail.")] = 0.0,
         timeout: Annotated[float, typer.Option(help="Seconds to wait for the devices.")] = 300.0,
         no_wait: Annotated[bool, typer.Option("--no-wait", help="Publish and return.")] = False,
         force: Annotated[bool, typer.Option(help="Allow a lower version (downgrade).")] = False,
         model: Annotated[str, typer.Option(help="Which model of the devices to update: a name from their "
                                                 "[models], or 'default'.")] = "default",
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Publish a bundle and the desired state; follow each device until it commits or fails."""
    topics = Topics(prefix)
    targets = list(device or []) + (_group_devices(broker, topics, group) if group else [])
    if not targets:
        raise fail("name devices with --device ID or --group G")
    if not valid_model_name(model):
        raise fail(f"--model {model!r}: {MODEL_NAME_RULE}")
    pusher = Pusher(_settings(broker), topics, on_progress=lambda p: _show(err, p), model=model)
    try:
        pusher.connect()
        with err.status(f"publishing {bundle}"):
            packed, desired = pusher.publish_bundle(bundle)
        err.print(f"bundle {packed.digest[:12]}: {packed.manifest.size / 1e6:.1f} MB in "
                  f"{len(packed.manifest.chunk_sha256)} retained chunks")
        desired = desired.model_copy(update={"force": force})
        results = rollout(pusher, desired, targets, canary, abort_on, timeout, not no_wait)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # a bundle that does not verify, a broken broker connection
        raise fail(f"{bundle}: {exc}") from exc
    finally:
        pusher.close()
    if as_json:
        emit_json(results)
    else:
        for r in results:
            err.print(f"{r['device']:20} {r['result']:12} {r['seconds']:6.1f} s  {r['reason'] or ''}")
    raise typer.Exit(0 if all(r["result"] in ("committed", "pending") for r in results) else 1)


@app.command()
def gc(broker: BrokerOpt = DEFAULT_BROKER, prefix: PrefixOpt = "edge",
       wait: Annotated[float, typer.Option(help="Seconds to gather retained messages.")] = 2.0) -> None:
    """Clear retained bundles that no device desires any more."""
    topics = Topics(prefix)
    desired, manifests = _retained(broker, topics, wait)
    stale = {d: m for d, m in manifests.items() if d not in desired}
    client = MqttClient(f"edgectl-gc-{uuid.uuid4().hex[:8]}", _settings(broker))
    client.start()
    for digest, manifest in stale.items():
        for i in range(len(manifest.chunk_sha256)):
            client.publish(topics.bundle_chunk(digest, i), b"", retain=True)
        client.publish(topics.bundle_manifest(digest), b"", retain=True)
    _pause(0.5)  # let the last publishes leave before disconnecting
    client.stop()
    err.print(f"cleared {len(stale)} bundle(s); {len(manifests) - len(stale)} still desired")


@app.command()
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


@app.command()
def cmd(device: Annotated[str, typer.Argument()], name: Annotated[str, typer.Argument(
        help="restart, reselect, logs, config")], broker: BrokerOpt = DEFAULT_BROKER, prefix: PrefixOpt = "edge",
        lines: Annotated[int, typer.Option(help="logs: how many lines")] = 50,
        timeout: Annotated[float, typer.Option()] = 10.0) -> None:
    """Send a remote command and print the reply (MQTT 5 request/response, 3.1.1 reply topic)."""
    if not valid_model_name(name):  # a topic level: no wildcard, separator or 70,000-character name
        raise fail(f"command {name[:64]!r}: {MODEL_NAME_RULE} (commands: {', '.join(COMMANDS)})")
    if not valid_device_id(device):
        raise fail(f"device {device[:64]!r}: {DEVICE_ID_RULE}")
    try:
        reply = request(broker, Topics(prefix), device, name, {"lines": lines} if name == "logs" else {}, timeout)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    emit_json(reply)
    raise typer.Exit(0 if reply.get("ok") else 1)


@app.command()
def schema(out: Annotated[Path | None, typer.Option(help="Write one <name>.schema.json per payload.")] = None,
           ) -> None:
    """JSON Schemas of every MQTT payload."""
    docs = schemas()
    if out is None:
        emit_json(docs)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / f"{name}.schema.json").write_text(json.dumps(doc, indent=2) + "\n")
    err.print(f"wrote {len(docs)} schemas to {out}")


_QUIT = threading.Event()


def _pause(seconds: float) -> bool:
    """Wait on an event (never a bare sleep); True when asked to quit."""
    return _QUIT.wait(seconds)


def _n(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _show(err: Any, p: Progress) -> None:
    err.print(f"  {p.device}: {p.phase}" + (f" ({p.reason})" if p.reason else ""), highlight=False)


def _group_devices(broker: str, topics: Topics, group: str) -> list[str]:
    return [d for d, s in status_mod.collect(_settings(broker), topics).items() if group in s.groups]


def _retained(broker: str, topics: Topics, wait: float) -> tuple[set[str], dict[str, BundleManifest]]:
    desired: set[str] = set()
    manifests: dict[str, BundleManifest] = {}
    client = MqttClient(f"edgectl-gc-{uuid.uuid4().hex[:8]}", _settings(broker))

    def on_desired(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            desired.add(Desired.model_validate_json(msg.payload).digest)

    def on_manifest(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            m = BundleManifest.model_validate_json(msg.payload)
            manifests[m.digest] = m

    for pattern in topics.every_desired():
        client.subscribe(pattern, on_desired)
    client.subscribe(topics.all_bundles(), on_manifest)
    client.start()
    _pause(wait)  # MQTT has no end-of-retained marker
    client.stop()
    return desired, manifests


def request(broker: str, topics: Topics, device: str, name: str, args: dict[str, Any],
            timeout: float) -> dict[str, Any]:
    """A command and its reply: the MQTT 5 response topic, or the 3.1.1 reply topic named by request id."""
    request_id = uuid.uuid4().hex[:16]
    got: dict[str, Any] = {}
    done = threading.Event()
    client = MqttClient(f"edgectl-cmd-{request_id[:8]}", _settings(broker))
    reply_topic = topics.reply(device, request_id)

    def on_reply(msg: Any) -> None:
        got.update(json.loads(msg.payload))
        done.set()

    client.subscribe(reply_topic, on_reply)
    if not client.start():
        raise FleetError("cannot reach the broker")
    payload = Command(request_id=request_id, args=args).model_dump_json().encode()
    props = client.response_properties(reply_topic, request_id.encode())
    client.publish(topics.cmd(device, name), payload, qos=1, properties=props)
    ok = done.wait(timeout)
    client.stop()
    if not ok:
        raise FleetError(f"{device} did not answer {name!r} within {timeout:.0f} s")
    return got
