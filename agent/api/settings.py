"""`[api]` in the agent's config: off unless a listen address is given; loopback unless secured."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def split_listen(value: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 as "[::1]:PORT") → (host, port), or a ValueError naming what is wrong."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    listen: str | None = None  # HTTP (KServe v2 REST, TF Serving REST, DeepStack, cameras, /metrics)
    grpc_listen: str | None = None  # KServe v2 gRPC (GRPCInferenceService)
    token_file: Path | None = None  # a bearer token every request must carry (DeepStack: its api_key field)
    cert_file: Path | None = None  # TLS for both listeners
    key_file: Path | None = None
    client_ca: Path | None = None  # mTLS: clients must present a certificate signed by this CA
    max_batch: Annotated[int, Field(gt=0)] = 8  # requests of one model answered by one runtime call
    max_delay_ms: Annotated[float, Field(ge=0)] = 0.0  # how long a batch waits for more (0: only what queued)
    queue: Annotated[int, Field(gt=0)] = 64  # requests waiting per model; more are answered 429
    deadline_ms: Annotated[float, Field(gt=0)] = 2000.0  # a request not answered by then is answered 503
    max_request_mb: Annotated[float, Field(gt=0)] = 32.0
    max_image_pixels: Annotated[int, Field(gt=0)] = 40_000_000
    max_request_batch: Annotated[int, Field(gt=0)] = 64  # images or tensor rows in one request

    @field_validator("listen", "grpc_listen")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            split_listen(value)
        return value

    @model_validator(mode="after")
    def _secured(self) -> ApiConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca is not None and self.cert_file is None:
            raise ValueError("client_ca (mTLS) needs cert_file and key_file")
        for value in (self.listen, self.grpc_listen):
            if value and not is_loopback(split_listen(value)[0]) and not (self.token_file or self.client_ca):
                raise ValueError(f"listen {value}: beyond loopback needs token_file or client_ca (mTLS)")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.listen or self.grpc_listen)

    def token(self) -> str | None:
        return self.token_file.read_text().strip() if self.token_file else None
