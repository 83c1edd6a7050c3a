"""The `edgectl` application: every command group, registered explicitly in one place."""

from __future__ import annotations

import typer

from . import build, bundles, metrics, push, remote, security, status
from .output import setup_logging

app = typer.Typer(help="edgectl: put a vision model on a fleet of edge devices.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.command()(build.build)
app.command()(status.status)
app.command()(status.devices)
app.command()(metrics.metrics)
app.command()(push.push)
app.command()(push.gc)
app.command()(remote.cmd)
app.command()(remote.schema)
app.add_typer(security.keys_app, name="keys")
app.add_typer(security.ca_app, name="ca")
app.add_typer(build.toolchain_app, name="toolchain")
app.add_typer(build.cache_app, name="cache")
app.add_typer(bundles.bundles_app, name="bundles")


def main() -> None:
    setup_logging()
    app()
