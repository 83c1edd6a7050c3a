"""`edgectl bundles`: lay bundles out for any static web server, or serve them for a small fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fleet import web
from fleet.errors import FleetError
from fleet.transfer import pack
from runtimes.bundle import open_bundle
from runtimes.errors import RuntimesError

from .output import err, fail, pause, stop_on_signals

bundles_app = typer.Typer(help="Bundle bytes over HTTP(S): layout for a web server, or a server.",
                          no_args_is_help=True)


@bundles_app.command("layout")
def layout(bundle: Annotated[Path, typer.Argument(help="Bundle directory (from edgectl build).")],
           out: Annotated[Path, typer.Option(help="The folder a web server serves (nginx, an object store).")]
           ) -> None:
    """Write OUT/<digest>/manifest.json and bundle.tar; push with --http <the URL of OUT>."""
    try:
        open_bundle(bundle)
        folder = web.layout(pack(bundle), out)
    except (FleetError, RuntimesError) as exc:
        raise fail(str(exc)) from exc
    err.print(f"laid out {folder}")
    typer.echo(folder.name)


@bundles_app.command("serve")
def serve(root: Annotated[Path, typer.Argument(help="A folder of laid-out bundles.")],
          listen: Annotated[str, typer.Option(help="HOST:PORT to listen on.")] = "0.0.0.0:8080") -> None:
    """Serve laid-out bundles with range requests until Ctrl-C (a small fleet's web server)."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail(f"--listen {listen!r}: HOST:PORT")
    if not root.is_dir():
        raise fail(f"{root}: no such folder")
    try:
        server = web.serve(root, host, int(port))
    except FleetError as exc:
        raise fail(str(exc)) from exc
    err.print(f"serving {root} on http://{host}:{port}/ (Ctrl-C stops)")
    stop_on_signals()
    while not pause(3600):
        pass
    server.shutdown()
