"""`edgectl keys` (the key pair that signs bundles) and `edgectl ca` (per-device TLS identities)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from builder import keys as keys_mod
from builder.errors import BuilderError
from fleet import ca
from fleet.errors import FleetError

from .output import err, fail

keys_app = typer.Typer(help="The Ed25519 key pair that signs bundles.", no_args_is_help=True)
ca_app = typer.Typer(help="A CA for per-device TLS identities (see docs/security.md).", no_args_is_help=True)


@keys_app.command("init")
def keys_init(force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False) -> None:
    """Create the signing key pair."""
    try:
        key = keys_mod.init(force=force)
    except BuilderError as exc:
        raise fail(str(exc)) from exc
    err.print(f"created key {key.key_id} at {key.path}")


@keys_app.command("list")
def keys_list() -> None:
    """Show the signing key's id and where it lives."""
    key = _load()
    typer.echo(f"{key.key_id}  {key.path}")


@keys_app.command("export")
def keys_export() -> None:
    """Print the public key (PEM) that devices trust."""
    sys.stdout.write(_load().public_pem.decode())


def _load() -> keys_mod.SigningKey:
    try:
        return keys_mod.load()
    except BuilderError as exc:
        raise fail(str(exc)) from exc


@ca_app.command("init")
def ca_init(force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False) -> None:
    """Create the fleet CA (ECDSA P-256)."""
    try:
        err.print(f"CA certificate: {ca.init(force=force)}")
    except FleetError as exc:
        raise fail(str(exc)) from exc


@ca_app.command("issue")
def ca_issue(name: Annotated[str, typer.Argument(help="Device id (becomes the MQTT username) or operator name.")],
             out: Annotated[Path, typer.Option(help="Where to write NAME.pem and NAME.key.")] = Path("."),
             server: Annotated[list[str] | None, typer.Option(help="Issue a broker certificate for this host/IP.")]
             = None) -> None:
    """Issue a client (or, with --server, a broker) certificate signed by the fleet CA."""
    try:
        cert, key = ca.issue(name, out, server_hosts=server or None)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    err.print(f"certificate {cert}, key {key}")
