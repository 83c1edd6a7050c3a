"""`edge-agent`: the device daemon and its tools."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated

import typer

app = typer.Typer(help="edge-agent: run a vision model on this device, fast and unattended.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """edge-agent commands."""


@app.command()
def probe(as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False) -> None:
    """Probe the CPU, memory, installed runtimes and accelerators."""
    from .probe import probe as run_probe

    result = run_probe()
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    cpu = result.cpu
    typer.echo(f"{result.arch}  {result.os}  {cpu['model']}  {cpu['cores']} cores  {result.memory_mb} MB")
    typer.echo(f"cpu flags: {' '.join(cpu['flags']) or '-'}")
    for name, info in result.runtimes.items():
        detail = info.get("unavailable") or f"{info['version']}  devices: {', '.join(info['devices'])}"
        typer.echo(f"  {name:12} {'-' if 'unavailable' in info else '✓'} {detail}")
    typer.echo(f"accelerators: {', '.join(result.accelerators) or 'none'}")
    for note in result.notes:
        typer.echo(f"note: {note}")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    app()
