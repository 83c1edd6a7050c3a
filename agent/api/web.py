"""What every HTTP front end shares: request limits, the bearer token, errors as one line in each protocol's
shape; and beside the protocols, the cameras' latest answers (JSON and server-sent events), a snapshot with
the answer drawn, and /metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..errors import ApiError
from .cameras import Latest
from .settings import ApiConfig

DEEPSTACK = "/v1/vision/"
OPEN_PATHS = ("/v2/health/live", "/v2/health/ready")  # probes (a load balancer's, systemd's) need no token


def check_size(request: Request, cfg: ApiConfig) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cfg.max_request_mb * 1e6:
        raise ApiError(413, f"body: {int(length)} bytes is more than max_request_mb ({cfg.max_request_mb:g} MB)")


async def body_of(request: Request, cfg: ApiConfig) -> bytes:
    check_size(request, cfg)
    limit, parts, size = cfg.max_request_mb * 1e6, [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body: more than max_request_mb ({cfg.max_request_mb:g} MB)")
        parts.append(chunk)
    return b"".join(parts)


async def json_of(request: Request, cfg: ApiConfig) -> Any:
    try:
        return json.loads(await body_of(request, cfg))
    except ValueError as exc:
        raise ApiError(400, f"body: not JSON ({exc})") from None


def bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authorised(request: Request, token: str | None) -> bool:
    if token is None or request.url.path in OPEN_PATHS or request.url.path.startswith(DEEPSTACK):
        return True  # DeepStack's clients send the key in the form: its routes check it (deepstack.py)
    given = bearer(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def error_response(path: str, status: int, message: str) -> Response:
    if path.startswith(DEEPSTACK):
        return JSONResponse({"success": False, "error": message}, status_code=status)
    return JSONResponse({"error": message}, status_code=status)


def routes(latest: Latest, metrics: Callable[[], bytes]) -> list[BaseRoute]:
    async def cameras(_: Request) -> Response:
        return JSONResponse(latest.all())

    async def one(request: Request) -> Response:
        return JSONResponse(latest.result(request.path_params["camera"]))

    async def events(request: Request) -> Response:
        camera = request.path_params["camera"]
        latest.result(camera)  # 404 before the stream starts
        return StreamingResponse(_stream(latest, camera), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def snapshot(request: Request) -> Response:
        return Response(latest.snapshot(request.path_params["camera"]), media_type="image/jpeg")

    async def prometheus(_: Request) -> Response:
        return Response(metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return [Route("/cameras", cameras), Route("/cameras/{camera}", one), Route("/cameras/{camera}/events", events),
            Route("/cameras/{camera}/snapshot.jpg", snapshot), Route("/metrics", prometheus)]


async def _stream(latest: Latest, camera: str) -> AsyncIterator[bytes]:
    seq = -1
    while True:
        seq, doc = await asyncio.to_thread(latest.wait, camera, seq, 15.0)
        yield (f"data: {json.dumps(doc)}\n\n" if doc is not None else ": keep-alive\n\n").encode()
