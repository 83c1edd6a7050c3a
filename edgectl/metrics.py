"""`edgectl metrics`: serve every device's MQTT telemetry as Prometheus metrics until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from fleet.exporter import Exporter
from fleet.topics import Topics

from .broker import BrokerOpt, PrefixOpt, settings
from .output import fail, pause, stop_on_signals


def metrics(listen: Annotated[str, typer.Option(help="HOST:PORT to serve /metrics on (port 0: any free one).")]
            = "127.0.0.1:9108", broker: BrokerOpt = None, prefix: PrefixOpt = "edge") -> None:
    """Prometheus metrics of every device's telemetry, labelled device="<id>", for a server to scrape."""
    host, port = _address(listen)
    exporter = Exporter(settings(broker), Topics(prefix))
    try:
        bound = exporter.start(host, port)
    except OSError as exc:
        raise fail(f"--listen {listen}: cannot listen ({exc.strerror or exc})") from exc
    except ConnectionError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"serving http://{bound[0]}:{bound[1]}/metrics")
    stop_on_signals()
    try:
        while not pause(3600):
            pass
    finally:
        exporter.stop()


def _address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise fail(f"--listen {listen!r}: expected HOST:PORT (e.g. 0.0.0.0:9108)")
    return host.strip("[]") or "0.0.0.0", int(port)  # an empty host: every interface
