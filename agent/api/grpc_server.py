"""KServe v2 over gRPC: Triton's `GRPCInferenceService`, with the protobufs `tritonclient[grpc]` ships (generated
by the Triton project from its .proto files, not written here), served by grpcio."""

from __future__ import annotations

import hmac
from concurrent import futures
from typing import Any

import grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

from ..errors import AgentError, ApiError
from . import kserve
from .registry import Api
from .settings import ApiConfig
from .tensors import DTYPES, Tensor, Value, from_bytes, shape_of, to_bytes, type_of

# The typed field of InferTensorContents each datatype travels in when not in raw_input_contents.
CONTENTS = {"BOOL": "bool_contents", "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
            "INT64": "int64_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
            "UINT32": "uint_contents", "UINT64": "uint64_contents", "FP32": "fp32_contents",
            "FP64": "fp64_contents", "BYTES": "bytes_contents"}
STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
          404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.INVALID_ARGUMENT,
          429: grpc.StatusCode.RESOURCE_EXHAUSTED, 503: grpc.StatusCode.UNAVAILABLE}


class Servicer(pb_grpc.GRPCInferenceServiceServicer):  # type: ignore[misc]
    def __init__(self, api: Api, cfg: ApiConfig, token: str | None) -> None:
        self.api, self.cfg, self.token = api, cfg, token

    def ServerLive(self, request: Any, context: Any) -> Any:
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request: Any, context: Any) -> Any:
        return pb.ServerReadyResponse(ready=self.api.ready())

    def ServerMetadata(self, request: Any, context: Any) -> Any:
        self._guard(context)
        meta = kserve.server_metadata()
        return pb.ServerMetadataResponse(name=meta["name"], version=meta["version"], extensions=meta["extensions"])

    def ModelReady(self, request: Any, context: Any) -> Any:
        self._guard(context)
        try:
            kserve.model(self.api, request.name, request.version)
        except ApiError:
            return pb.ModelReadyResponse(ready=False)
        return pb.ModelReadyResponse(ready=True)

    def ModelMetadata(self, request: Any, context: Any) -> Any:
        self._guard(context)
        meta = self._call(context, lambda: kserve.model_metadata(kserve.model(self.api, request.name,
                                                                               request.version)))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(name=meta["name"], versions=meta["versions"], platform=meta["platform"],
                                        inputs=[tensor(**t) for t in meta["inputs"]],
                                        outputs=[tensor(**t) for t in meta["outputs"]])

    def ModelInfer(self, request: Any, context: Any) -> Any:
        self._guard(context)
        return self._call(context, lambda: self._infer(request))

    def _infer(self, request: Any) -> Any:
        svc = kserve.model(self.api, request.model_name, request.model_version)
        outputs = kserve.infer(svc, _inputs(request), self.cfg.max_image_pixels)
        wanted = [o.name for o in request.outputs] or list(outputs)
        for name in wanted:
            if name not in outputs:
                raise ApiError(400, f"outputs: {name!r} is not an output of this request ({', '.join(outputs)})")
        response = pb.ModelInferResponse(model_name=request.model_name, model_version=str(svc.manifest().version),
                                          id=request.id)
        for name in wanted:
            response.outputs.add(name=name, datatype=type_of(outputs[name]), shape=shape_of(outputs[name]))
            response.raw_output_contents.append(to_bytes(outputs[name]))
        return response

    def _guard(self, context: Any) -> None:
        if self.token is None:
            return
        given = dict(context.invocation_metadata()).get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), self.token.encode()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "authorization: a valid bearer token is required")

    def _call(self, context: Any, fn: Any) -> Any:
        try:
            return fn()
        except ApiError as exc:
            context.abort(STATUS.get(exc.status, grpc.StatusCode.INTERNAL), str(exc))


def _inputs(request: Any) -> list[Tensor]:
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise ApiError(400, f"raw_input_contents: {len(raw)} entries for {len(request.inputs)} inputs")
    tensors = []
    for i, item in enumerate(request.inputs):
        where, dtype, shape = f"inputs[{i}]", item.datatype, list(item.shape)
        if dtype != "BYTES" and dtype not in DTYPES:
            raise ApiError(400, f"{where}.datatype: {dtype!r} is not a KServe v2 datatype")
        value = from_bytes(raw[i], dtype, shape, where) if raw else _contents(item, dtype, shape, where)
        tensors.append(Tensor(item.name, dtype, shape, value))
    return tensors


def _contents(item: Any, dtype: str, shape: list[int], where: str) -> Value:
    import numpy as np

    values = list(getattr(item.contents, CONTENTS.get(dtype, "fp32_contents")))
    count = int(np.prod(shape)) if shape else 1
    if len(values) != count:
        raise ApiError(400, f"{where}.contents: {len(values)} elements where shape {shape} holds {count}")
    if dtype == "BYTES":
        return [bytes(v) for v in values]
    array: Value = np.asarray(values, dtype=DTYPES[dtype]).reshape(shape)
    return array


class GrpcServer:
    def __init__(self, servicer: Servicer, cfg: ApiConfig) -> None:
        limit = int(cfg.max_request_mb * 1e6)
        self.address = cfg.grpc_listen or ""
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="api-grpc"),
                                   options=[("grpc.max_receive_message_length", limit),
                                            ("grpc.max_send_message_length", limit)])
        pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._cfg = cfg

    def start(self) -> GrpcServer:
        try:
            port = self._server.add_secure_port(self.address, _credentials(self._cfg)) if self._cfg.cert_file \
                else self._server.add_insecure_port(self.address)
        except (RuntimeError, OSError) as exc:
            raise AgentError(f"api grpc_listen {self.address}: cannot listen ({exc})") from exc
        if port == 0:
            raise AgentError(f"api grpc_listen {self.address}: cannot listen (in use?)")
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=2).wait(5)


def _credentials(cfg: ApiConfig) -> Any:
    key = cfg.key_file.read_bytes() if cfg.key_file else b""
    cert = cfg.cert_file.read_bytes() if cfg.cert_file else b""
    ca = cfg.client_ca.read_bytes() if cfg.client_ca else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)
