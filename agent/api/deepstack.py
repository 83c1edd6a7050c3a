"""DeepStack's vision API (what Frigate's `deepstack` detector and Home Assistant integrations post to):
`/v1/vision/detection` and `/v1/vision/custom/<model>` for detectors, `/v1/vision/scene` for a classifier.
Multipart `image`, optional `min_confidence` and `api_key`; errors are {"success": false, "error": …}."""

from __future__ import annotations

import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ApiError
from .images import decode_image
from .registry import Api
from .service import ModelService
from .settings import ApiConfig
from .web import bearer, check_size

DEFAULT_MIN_CONFIDENCE = 0.4  # DeepStack's own default


def routes(api: Api, cfg: ApiConfig, token: str | None) -> list[BaseRoute]:
    async def detection(request: Request) -> Response:
        form = await _form(request, cfg, token)
        name = request.path_params.get("name")
        svc = api.find(name) if name else api.of_task("detect")
        return JSONResponse(await run_in_threadpool(_detect, svc, form, cfg.max_image_pixels))

    async def scene(request: Request) -> Response:
        form = await _form(request, cfg, token)
        return JSONResponse(await run_in_threadpool(_scene, api.of_task("classify"), form, cfg.max_image_pixels))

    return [Route("/v1/vision/detection", detection, methods=["POST"]),
            Route("/v1/vision/custom/{name}", detection, methods=["POST"]),
            Route("/v1/vision/scene", scene, methods=["POST"])]


async def _form(request: Request, cfg: ApiConfig, token: str | None) -> dict[str, Any]:
    check_size(request, cfg)
    try:
        async with request.form(max_part_size=int(cfg.max_request_mb * 1e6)) as form:
            image = form.get("image")
            if not isinstance(image, UploadFile):
                raise ApiError(400, "image: missing (a multipart file field named 'image')")
            fields = {"image": await image.read(), "min_confidence": form.get("min_confidence"),
                      "api_key": form.get("api_key")}
    except ApiError:
        raise
    except Exception as exc:  # python-multipart's parse errors: a malformed body, not our failure
        raise ApiError(400, f"body: not a multipart form ({exc})") from None
    _authorise(request, fields["api_key"], token)
    return fields


def _authorise(request: Request, api_key: object, token: str | None) -> None:
    """DeepStack clients send the key as a form field; a bearer header is taken too."""
    if token is None:
        return
    given = api_key if isinstance(api_key, str) and api_key else bearer(request)
    if given is None or not hmac.compare_digest(given.encode(), token.encode()):
        raise ApiError(401, "api_key: missing or wrong")


def _min_confidence(value: object) -> float:
    if value is None or value == "":
        return DEFAULT_MIN_CONFIDENCE
    try:
        number = float(str(value))
    except ValueError:
        raise ApiError(400, f"min_confidence: {value!r} is not a number") from None
    if not 0 <= number <= 1:
        raise ApiError(400, f"min_confidence: {number} is not between 0 and 1")
    return number


def _detect(svc: ModelService, form: dict[str, Any], max_pixels: int) -> dict[str, Any]:
    floor = _min_confidence(form["min_confidence"])
    answer = svc.images([decode_image(form["image"], max_pixels, "image")])[0].model_dump()
    if "detections" not in answer:
        raise ApiError(400, f"model {svc.name}: a {svc.manifest().task} model, not a detector")
    return {"success": True, "predictions": [
        {"label": d["label"], "confidence": round(d["score"], 4), "x_min": round(d["box"][0]),
         "y_min": round(d["box"][1]), "x_max": round(d["box"][2]), "y_max": round(d["box"][3])}
        for d in answer["detections"] if d["score"] >= floor]}


def _scene(svc: ModelService, form: dict[str, Any], max_pixels: int) -> dict[str, Any]:
    answer = svc.images([decode_image(form["image"], max_pixels, "image")])[0].model_dump()
    label, confidence = answer["top"][0]
    return {"success": True, "label": label, "confidence": round(float(confidence), 4)}
