"""OpenVINO: IR or ONNX on CPU, GPU or NPU, with precision and performance hints as candidate settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import InferenceFailed, LoadFailed, RuntimeUnavailable
from ..processing import Array
from .base import Adapter, HostTraits, Options, RuntimeInfo, Variant, parse_options


class OvOptions(Options):
    device: str = "CPU"
    # On AMX CPUs the default is bf16, which costs accuracy: the hint is part of a candidate.
    precision: Literal["f32", "bf16", "f16"] | None = None
    hint: Literal["LATENCY", "THROUGHPUT"] = "LATENCY"
    threads: int | None = None


def _import() -> Any:
    try:
        import openvino
    except ImportError as exc:
        raise RuntimeUnavailable("openvino", f"cannot import openvino ({exc})") from exc
    return openvino


class OpenVinoAdapter(Adapter):
    runtime: ClassVar[str] = "openvino"
    options_model: ClassVar[type[Options]] = OvOptions
    # OpenVINO reads ONNX directly, so it is a candidate for the ONNX artifacts too.

    def __init__(self) -> None:
        super().__init__()
        self._compiled: Any = None
        self._request: Any = None

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        return [v for device in devices for v in _device_variants(precision, device, host)]

    @classmethod
    def probe(cls) -> RuntimeInfo:
        ov = _import()
        try:
            devices = list(ov.Core().available_devices)
        except Exception as exc:
            raise RuntimeUnavailable("openvino", f"Core() failed: {exc}") from exc
        return RuntimeInfo("openvino", ov.get_version().split("-")[0], devices)

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        opts = parse_options(OvOptions, self.runtime, options)
        ov = _import()
        config: dict[str, Any] = {"PERFORMANCE_HINT": opts.hint}
        if opts.precision:
            config["INFERENCE_PRECISION_HINT"] = opts.precision
        if opts.threads:
            config["INFERENCE_NUM_THREADS"] = opts.threads
        try:
            core = ov.Core()
            self._compiled = core.compile_model(core.read_model(str(files[0])), opts.device, config)
        except Exception as exc:
            raise LoadFailed(f"openvino could not compile {files[0].name} for {opts.device}: {exc}") from exc
        self._request = self._compiled.create_infer_request()
        self.options = opts

    def infer(self, inputs: list[Array]) -> list[Array]:
        try:
            self._request.infer(inputs)
            return [self._request.get_output_tensor(i).data.copy() for i in range(len(self._compiled.outputs))]
        except Exception as exc:
            raise InferenceFailed(f"openvino: {exc}") from exc

    def infer_many(self, batches: list[list[Array]]) -> list[list[Array]]:
        """Throughput mode: several requests in flight through an async infer queue."""
        ov = _import()
        results: list[list[Array]] = [[] for _ in batches]
        queue = ov.AsyncInferQueue(self._compiled)

        def done(request: Any, index: int) -> None:
            results[index] = [request.get_output_tensor(i).data.copy() for i in range(len(self._compiled.outputs))]

        queue.set_callback(done)
        try:
            for i, inputs in enumerate(batches):
                queue.start_async(inputs, i)
            queue.wait_all()
        except Exception as exc:
            raise InferenceFailed(f"openvino async: {exc}") from exc
        return results

    def executing(self) -> str:
        if self._compiled is None:
            return "not loaded"
        devices = ",".join(self._compiled.get_property("EXECUTION_DEVICES"))
        precision = self._compiled.get_property("INFERENCE_PRECISION_HINT")
        name = precision.get_type_name() if hasattr(precision, "get_type_name") else str(precision)
        return f"{devices}/{name}"

    def close(self) -> None:
        self._request = None
        self._compiled = None


def _device_variants(precision: str, device: str, host: HostTraits) -> list[Variant]:
    """The precision hint is part of a variant: bf16 is faster on AMX CPUs but costs accuracy. INT8 IRs
    take no hint; threads matter on the CPU only."""
    cpu = device == "CPU"
    hints: list[str | None]
    if precision == "int8":
        hints = [None]
    else:
        hints = ["f32", "bf16"] if cpu and {"amx_bf16", "bf16"} & host.cpu_flags else ["f32"] if cpu else ["f16"]
    found = []
    for hint in hints:
        for t in host.threads if cpu else (0,):
            settings: dict[str, Any] = {"device": device, **({"precision": hint} if hint else {}),
                                        **({"threads": t} if t else {})}
            found.append(Variant(device, settings, {"bf16": "bf16", "f16": "fp16"}.get(hint or "", precision)))
    return found
