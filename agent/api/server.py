"""The HTTP listener: one Starlette app (KServe v2, TF Serving, DeepStack, cameras, /metrics) under uvicorn on
a thread of the agent. Starlette and uvicorn: small, maintained, and what FastAPI itself stands on, without
its validation layer that our own pydantic models and the protocols' codecs already are (docs/agent.md)."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import AgentError, ApiError
from . import deepstack, http_v2, tfserving, web
from .cameras import Latest
from .registry import Api
from .settings import ApiConfig, split_listen

log = logging.getLogger(__name__)


class Auth:
    """A bearer token on every request but the health probes (DeepStack's routes check their api_key)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not web.authorised(Request(scope), self.token):
            response = web.error_response(scope["path"], 401, "Authorization: a valid bearer token is required")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def make_app(api: Api, cfg: ApiConfig, token: str | None, latest: Latest, metrics: Callable[[], bytes]) -> Starlette:
    async def api_error(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, ApiError) else 500
        return web.error_response(request.url.path, status, str(exc))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
        return web.error_response(request.url.path, status, f"{request.method} {request.url.path}: {detail}")

    async def unexpected(request: Request, exc: Exception) -> Response:
        log.warning("api %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return web.error_response(request.url.path, 500, f"internal error: {type(exc).__name__}: {exc}")

    routes = [*http_v2.routes(api, cfg), *tfserving.routes(api, cfg), *deepstack.routes(api, cfg, token),
              *web.routes(latest, metrics)]
    return Starlette(routes=routes, middleware=[Middleware(Auth, token=token)],
                     exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: unexpected})


class HttpServer:
    def __init__(self, app: Starlette, cfg: ApiConfig) -> None:
        import uvicorn

        host, port = split_listen(cfg.listen or "")
        self.address = cfg.listen
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                     access_log=False, lifespan="off", **_tls(cfg)))
        self._thread = threading.Thread(target=self._server.run, name="api-http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> HttpServer:
        self._thread.start()
        stop = threading.Event()
        while not self._server.started and self._thread.is_alive() and not stop.wait(0.02):
            timeout_s -= 0.02
            if timeout_s <= 0:
                break
        if not self._server.started:
            raise AgentError(f"api listen {self.address}: cannot listen (in use, or not an address of this host)")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


def _tls(cfg: ApiConfig) -> dict[str, Any]:
    if cfg.cert_file is None:
        return {}
    tls: dict[str, Any] = {"ssl_certfile": str(cfg.cert_file), "ssl_keyfile": str(cfg.key_file)}
    if cfg.client_ca is not None:
        tls.update(ssl_ca_certs=str(cfg.client_ca), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return tls
