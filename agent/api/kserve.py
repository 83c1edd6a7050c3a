"""The KServe v2 (Open Inference Protocol) semantics, shared by the HTTP and gRPC front ends: metadata in the
source model's terms, and `infer` at two levels — the model's input tensor (preprocessed) in, its outputs out;
or images (JPEG/PNG bytes as a BYTES input) in, the task's answer (JSON, one per image) out as `answer`."""

from __future__ import annotations

from typing import Any

from runtimes.errors import ProcessingError
from runtimes.signature import check_shape, source_outputs

from .. import __version__
from ..errors import ApiError
from .images import decode_images
from .registry import Api
from .service import ModelService
from .tensors import DTYPES, Tensor, Value, bad, datatype

ANSWER = "answer"  # the task-level output: one JSON answer per image
EXTENSIONS = ["binary_tensor_data", "model_repository"]


def server_metadata() -> dict[str, Any]:
    return {"name": "edge-agent", "version": __version__, "extensions": EXTENSIONS}


def model_metadata(svc: ModelService) -> dict[str, Any]:
    manifest, source = svc.manifest(), svc.source()
    return {"name": svc.name, "versions": [str(manifest.version)], "platform": f"edgectl_{manifest.task}",
            "inputs": [{"name": source.name, "datatype": datatype(source.dtype), "shape": source.shape}],
            "outputs": [{"name": o.name, "datatype": "FP32", "shape": o.shape} for o in source_outputs(manifest)]}


def model(api: Api, name: str, version: str | None) -> ModelService:
    """The model by the bundle's name (or the agent's name for it), at the version it serves."""
    svc = api.find(name)
    if version not in (None, "", str(svc.manifest().version)):
        raise ApiError(404, f"model {name}: version {version} is not served (it serves "
                       f"v{svc.manifest().version})")
    return svc


def infer(svc: ModelService, inputs: list[Tensor], max_pixels: int) -> dict[str, Value]:
    if len(inputs) != 1:
        raise bad("inputs", f"{len(inputs)} inputs; the model takes one ({svc.source().name}, or images as BYTES)")
    tensor = inputs[0]
    if tensor.datatype == "BYTES":
        if not isinstance(tensor.value, list):
            raise bad("inputs[0]", "BYTES input without elements")
        frames = decode_images(tensor.value, max_pixels, "inputs[0]")
        return {ANSWER: [a.model_dump_json().encode() for a in svc.images(frames)]}
    return _tensor(svc, tensor)


def _tensor(svc: ModelService, tensor: Tensor) -> dict[str, Value]:
    source = svc.source()
    if tensor.name != source.name:
        raise bad("inputs[0].name", f"{tensor.name!r} is not the model's input {source.name!r} "
                  f"(or send images as a BYTES input)")
    if DTYPES[tensor.datatype] != source.dtype:
        raise bad("inputs[0].datatype", f"{tensor.datatype}; the model's input {source.name} is "
                  f"{datatype(source.dtype)}")
    if isinstance(tensor.value, list):
        raise bad("inputs[0]", "not a numeric tensor")
    try:
        check_shape(tensor.value, source, "inputs[0].shape")
    except ProcessingError as exc:
        raise ApiError(400, str(exc)) from None
    if len(tensor.value) == 0:
        raise bad("inputs[0].shape", "a batch of 0")
    return dict(svc.tensor(tensor.value))


def requested(doc: dict[str, Any], outputs: dict[str, Value]) -> dict[str, bool]:
    """Which outputs the request asked for (all when it names none) and whether each goes back binary."""
    default = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    asked = doc.get("outputs")
    if not asked:
        return {name: default for name in outputs}
    if not isinstance(asked, list):
        raise bad("outputs", "not a list")
    chosen = {}
    for i, item in enumerate(asked):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in outputs:
            raise bad(f"outputs[{i}].name", f"{name!r} is not an output of this request "
                      f"({', '.join(outputs)})")
        chosen[name] = bool((item.get("parameters") or {}).get("binary_data", default))
    return chosen
