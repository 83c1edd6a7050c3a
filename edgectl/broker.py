"""The options every fleet command shares: which broker, which prefix, and the operator's credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from fleet.errors import FleetError
from fleet.mqtt import BrokerSettings

from .output import fail

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
BrokerOpt = Annotated[list[str] | None, typer.Option(
    envvar="EDGECTL_BROKER", help="mqtt://HOST:PORT or mqtts://…; repeat it (or separate with commas) for the "
                                  "nodes of a cluster, tried in order.")]
PrefixOpt = Annotated[str, typer.Option(envvar="EDGECTL_PREFIX", help="Topic prefix.")]
CREDENTIAL_ENV = {"ca_file": "EDGECTL_CA_FILE", "cert_file": "EDGECTL_CERT_FILE", "key_file": "EDGECTL_KEY_FILE",
                  "username": "EDGECTL_USERNAME"}


def settings(urls: list[str] | str | None) -> list[BrokerSettings]:
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
        return BrokerSettings.from_urls(urls or DEFAULT_BROKER, **extra)
    except FleetError as exc:
        raise fail(f"--broker: {exc}") from exc
