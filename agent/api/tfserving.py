"""TF Serving's REST API: `GET /v1/models/<name>` (status) and `POST /v1/models/<name>:predict` with `instances`
(row) or `inputs` (columnar); an instance {"b64": …} is an image, answered with the task's answer."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import ApiError
from . import kserve
from .images import decode_images
from .registry import Api
from .service import ModelService
from .settings import ApiConfig
from .tensors import Tensor, bad, datatype
from .web import json_of

PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+))?(?P<verb>:predict|/metadata)?$")


def routes(api: Api, cfg: ApiConfig) -> list[BaseRoute]:
    async def handle(request: Request) -> Response:
        match = PATH.match(request.path_params["rest"])
        if match is None:
            raise ApiError(404, f"{request.url.path}: not a TF Serving path (/v1/models/NAME[:predict])")
        svc = kserve.model(api, match["name"], match["version"])
        if match["verb"] == ":predict" and request.method == "POST":
            doc = await json_of(request, cfg)
            return JSONResponse(await run_in_threadpool(predict, svc, doc, cfg.max_image_pixels))
        if match["verb"] == "/metadata":
            return JSONResponse({"model_spec": _spec(svc), "metadata": kserve.model_metadata(svc)})
        return JSONResponse({"model_version_status": [{"version": str(svc.manifest().version),
                                                       "state": "AVAILABLE",
                                                       "status": {"error_code": "OK", "error_message": ""}}]})

    return [Route("/v1/models/{rest:path}", handle, methods=["GET", "POST"])]


def _spec(svc: ModelService) -> dict[str, Any]:
    return {"name": svc.name, "signature_name": "serving_default", "version": str(svc.manifest().version)}


def predict(svc: ModelService, doc: Any, max_pixels: int) -> dict[str, Any]:
    if not isinstance(doc, dict) or ("instances" in doc) == ("inputs" in doc):
        raise bad("body", "a predict request has exactly one of 'instances' (row) or 'inputs' (columnar)")
    rows = "instances" in doc
    value = doc["instances"] if rows else doc["inputs"]
    if isinstance(value, dict) and not _is_b64(value):  # named inputs: the model has one
        value = _named(value, svc)
    images = _images(value, max_pixels)
    if images is not None:
        answers = [a.model_dump(mode="json") for a in svc.images(images)]
        return {"predictions": answers} if rows else {"outputs": answers}
    outputs = _tensor(svc, value, "instances" if rows else "inputs")
    if rows:
        return {"predictions": _rows(outputs)}
    return {"outputs": next(iter(outputs.values())).tolist() if len(outputs) == 1
            else {k: v.tolist() for k, v in outputs.items()}}


def _named(value: dict[str, Any], svc: ModelService) -> Any:
    name = svc.source().name
    if set(value) != {name}:
        raise bad("inputs", f"names {sorted(value)}; the model's one input is {name!r}")
    return value[name]


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"b64"}


def _images(value: Any, max_pixels: int) -> list[Any] | None:
    items = value if isinstance(value, list) else [value]
    if not items or not all(_is_b64(v) for v in items):
        return None
    raw = []
    for i, item in enumerate(items):
        try:
            raw.append(base64.b64decode(item["b64"], validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise bad(f"instances[{i}].b64", "not base64") from None
    return decode_images(raw, max_pixels, "instances")


def _tensor(svc: ModelService, value: Any, where: str) -> dict[str, Any]:
    source = svc.source()
    try:
        array = np.asarray(value, dtype=source.dtype)
    except (TypeError, ValueError) as exc:
        raise bad(where, f"not a tensor of numbers of one shape ({exc})") from None
    return kserve.infer(svc, [Tensor(source.name, datatype(array.dtype), list(array.shape), array)], 0)


def _rows(outputs: dict[str, Any]) -> list[Any]:
    if len(outputs) == 1:
        return [row.tolist() for row in next(iter(outputs.values()))]
    count = len(next(iter(outputs.values())))
    return [{k: v[i].tolist() for k, v in outputs.items()} for i in range(count)]
