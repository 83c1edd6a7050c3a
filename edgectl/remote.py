"""`edgectl cmd` (a remote command and its reply) and `edgectl schema` (the payloads' JSON Schemas)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from fleet.errors import FleetError
from fleet.messages import schemas
from fleet.remote import request
from fleet.topics import COMMANDS, DEVICE_ID_RULE, MODEL_NAME_RULE, Topics, valid_device_id, valid_model_name

from .broker import BrokerOpt, PrefixOpt, settings
from .output import emit_json, err, fail


def cmd(device: Annotated[str, typer.Argument()], name: Annotated[str, typer.Argument(
        help="restart, reselect, logs, config")], broker: BrokerOpt = None, prefix: PrefixOpt = "edge",
        lines: Annotated[int, typer.Option(help="logs: how many lines")] = 50,
        timeout: Annotated[float, typer.Option()] = 10.0) -> None:
    """Send a remote command and print the reply (MQTT 5 request/response, 3.1.1 reply topic)."""
    if not valid_model_name(name):  # a topic level: no wildcard, separator or 70,000-character name
        raise fail(f"command {name[:64]!r}: {MODEL_NAME_RULE} (commands: {', '.join(COMMANDS)})")
    if not valid_device_id(device):
        raise fail(f"device {device[:64]!r}: {DEVICE_ID_RULE}")
    args = {"lines": lines} if name == "logs" else {}
    try:
        reply = request(settings(broker), Topics(prefix), device, name, args, timeout)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    emit_json(reply)
    raise typer.Exit(0 if reply.get("ok") else 1)


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
