"""ONNX Runtime: the CPU provider with thread settings, and CUDA/TensorRT/OpenVINO providers when present."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import InferenceFailed, LoadFailed, RuntimeUnavailable
from ..processing import Array
from .base import Adapter, HostTraits, Options, RuntimeInfo, Variant, parse_options

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}


class OrtOptions(Options):
    device: Literal["cpu", "cuda", "tensorrt", "openvino"] = "cpu"
    threads: int | None = None
    # ONNX Runtime's worker threads busy-wait between operators by default. Alone that is within noise here,
    # but a spinning pool takes the cores from every other session in the process (the shadow beside the
    # serving model during a soak cost 31 % of its fps with spinning, 10 % without: docs/agent.md).
    spin: bool = False


def _import() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise RuntimeUnavailable("onnxruntime", f"cannot import onnxruntime ({exc})") from exc
    return onnxruntime


class OnnxRuntimeAdapter(Adapter):
    runtime: ClassVar[str] = "onnxruntime"
    options_model: ClassVar[type[Options]] = OrtOptions

    def __init__(self) -> None:
        super().__init__()
        self._session: Any = None
        self._names: list[str] = []

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        """The CPU at each thread count worth measuring; an accelerator (CUDA, …) as it comes."""
        cpu = [Variant("cpu", {"device": "cpu", "threads": t}, precision) for t in host.threads if "cpu" in devices]
        return cpu + [Variant(d, {"device": d}, precision) for d in devices if d != "cpu"]

    @classmethod
    def probe(cls) -> RuntimeInfo:
        ort = _import()
        available = set(ort.get_available_providers())
        devices = [dev for dev, prov in PROVIDERS.items() if prov in available]
        return RuntimeInfo("onnxruntime", ort.__version__, devices)

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        opts = parse_options(OrtOptions, self.runtime, options)
        ort = _import()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if opts.threads:
            so.intra_op_num_threads = opts.threads
            so.inter_op_num_threads = 1
        if not opts.spin:
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
            so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = [PROVIDERS[opts.device]] + (["CPUExecutionProvider"] if opts.device != "cpu" else [])
        try:
            self._session = ort.InferenceSession(str(files[0]), so, providers=providers)
        except Exception as exc:
            raise LoadFailed(f"onnxruntime could not load {files[0].name}: {exc}") from exc
        self._check_provider(opts)
        self._names = [i.name for i in self._session.get_inputs()]
        self.options = opts

    def _check_provider(self, opts: OrtOptions) -> None:
        # ONNX Runtime falls back to CPU silently when a provider cannot start: refuse instead,
        # so a candidate labelled "cuda" never measures the CPU.
        active = self._session.get_providers()
        if active[0] != PROVIDERS[opts.device]:
            raise LoadFailed(f"onnxruntime asked for {PROVIDERS[opts.device]} but runs on {active[0]}")

    def infer(self, inputs: list[Array]) -> list[Array]:
        try:
            outs: list[Array] = self._session.run(None, dict(zip(self._names, inputs, strict=True)))
        except Exception as exc:
            raise InferenceFailed(f"onnxruntime: {exc}") from exc
        return outs

    def executing(self) -> str:
        return str(self._session.get_providers()[0]) if self._session is not None else "not loaded"

    def close(self) -> None:
        self._session = None
