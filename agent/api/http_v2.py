"""KServe v2 over HTTP/REST: health, server and model metadata, readiness and `infer` (JSON and binary)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from . import kserve
from .registry import Api
from .settings import ApiConfig
from .tensors import HEADER, read_request, write_response
from .web import body_of


def routes(api: Api, cfg: ApiConfig) -> list[BaseRoute]:
    async def live(_: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(_: Request) -> Response:
        return JSONResponse({"ready": api.ready()}, status_code=200 if api.ready() else 503)

    async def server(_: Request) -> Response:
        return JSONResponse(kserve.server_metadata())

    async def metadata(request: Request) -> Response:
        p = request.path_params
        return JSONResponse(kserve.model_metadata(kserve.model(api, p["name"], p.get("version"))))

    async def model_ready(request: Request) -> Response:
        p = request.path_params
        svc = kserve.model(api, p["name"], p.get("version"))
        return JSONResponse({"name": svc.name, "ready": True})

    async def infer(request: Request) -> Response:
        p = request.path_params
        svc = kserve.model(api, p["name"], p.get("version"))
        doc, inputs = read_request(await body_of(request, cfg), request.headers.get(HEADER))
        outputs = await run_in_threadpool(kserve.infer, svc, inputs, cfg.max_image_pixels)
        head = {"model_name": p["name"], "model_version": str(svc.manifest().version)}
        if isinstance(doc.get("id"), str):
            head["id"] = doc["id"]
        body, length = write_response(head, outputs, kserve.requested(doc, outputs))
        if length is None:
            return Response(body, media_type="application/json")
        return Response(body, media_type="application/octet-stream", headers={HEADER: str(length)})

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [Route("/v2/health/live", live), Route("/v2/health/ready", ready), Route("/v2", server),
            *[Route(base, metadata) for base in (model, versioned)],
            *[Route(f"{base}/ready", model_ready) for base in (model, versioned)],
            *[Route(f"{base}/infer", infer, methods=["POST"]) for base in (model, versioned)]]
