"""TensorRT on Jetson/NVIDIA GPUs: the engine is built on the device from the bundle's recipe and cached.

The bundle carries a static FP16 ONNX and a symmetric-QDQ INT8 ONNX; TensorRT 10+/11 networks are
strongly typed, so the precision comes from the graph, not from builder flags. Engines are specific to
the GPU, TensorRT, CUDA and L4T versions, hence the cache key.

Untested here (no GPU on the build machines): `_build`, `load` and `infer` need a GPU; the cache key,
recipe handling and the unavailable path are tested.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import InferenceFailed, LoadFailed, RuntimeUnavailable
from ..processing import Array
from .base import Adapter, HostTraits, Options, RuntimeInfo, Variant, parse_options

log = logging.getLogger(__name__)
DEFAULT_CACHE = Path(os.environ.get("EDGECTL_ENGINE_CACHE", "/var/lib/edge-agent/engines"))


class TrtOptions(Options):
    precision: Literal["fp16", "int8"] = "fp16"
    cache_dir: str = str(DEFAULT_CACHE)
    workspace_mb: int = 1024


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; a change in any field means a rebuild."""

    model_sha256: str
    gpu: str
    compute_capability: str
    tensorrt: str
    cuda: str
    l4t: str
    precision: str

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:24]

    def filename(self) -> str:
        return f"{self.precision}-{self.digest()}.engine"


def l4t_release(path: Path = Path("/etc/nv_tegra_release")) -> str:
    """'R36.4.0' from Jetson's release file, or '' off Jetson."""
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return ""
    parts = dict(p.strip().split(" ", 1) for p in first.lstrip("# ").split(",") if " " in p.strip())
    major = parts.get("R", "").split()[0] if parts.get("R") else ""
    revision = parts.get("REVISION:", "").strip() or parts.get("REVISION", "").replace(":", "").strip()
    return f"R{major}.{revision}" if major else ""


def recipe_file(files: list[Path], precision: str) -> Path:
    """The ONNX that carries `precision`, as the recipe (the artifact's first file) says; never by file name."""
    if not files:
        raise LoadFailed("tensorrt artifact lists no files")
    try:
        recipe = json.loads(files[0].read_text())
        name = str(recipe["onnx"][precision])
    except (OSError, ValueError) as exc:
        raise LoadFailed(f"{files[0]}: not a readable TensorRT recipe ({exc})") from exc
    except (KeyError, TypeError) as exc:
        raise LoadFailed(f"{files[0]}: no ONNX for precision {precision!r}") from exc
    path = files[0].parent / name
    if path not in files:
        raise LoadFailed(f"{files[0]}: names {name!r}, which the artifact does not list")
    return path


def _import() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise RuntimeUnavailable("tensorrt", f"cannot import tensorrt ({exc})") from exc
    return tensorrt


def _cudart() -> Any:
    try:
        from cuda.bindings import runtime
    except ImportError as exc:
        raise RuntimeUnavailable("tensorrt", f"cuda-python is needed for device buffers ({exc})") from exc
    return runtime


def _check(result: Any) -> Any:
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise InferenceFailed(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


class TensorRtAdapter(Adapter):
    runtime: ClassVar[str] = "tensorrt"
    options_model: ClassVar[type[Options]] = TrtOptions

    def __init__(self) -> None:
        super().__init__()
        self._engine: Any = None
        self._context: Any = None
        self._buffers: dict[str, tuple[int, Any, Any]] = {}
        self._stream: Any = None

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        """One engine per precision the recipe allows, on the first GPU."""
        device = devices[0] if devices else "cuda:0"
        return [Variant(device, {"precision": p}, p) for p in settings.get("precisions", ["fp16"])]

    @classmethod
    def probe(cls) -> RuntimeInfo:
        trt = _import()
        cudart = _cudart()
        count = _check(cudart.cudaGetDeviceCount())
        if not count:
            raise RuntimeUnavailable("tensorrt", "no CUDA device")
        return RuntimeInfo("tensorrt", trt.__version__, [f"cuda:{i}" for i in range(count)])

    @staticmethod
    def engine_key(model_sha256: str, precision: str) -> EngineKey:
        trt, cudart = _import(), _cudart()
        props = _check(cudart.cudaGetDeviceProperties(0))
        cuda = _check(cudart.cudaRuntimeGetVersion())
        return EngineKey(model_sha256, props.name.decode(), f"{props.major}.{props.minor}", trt.__version__,
                         str(cuda), l4t_release(), precision)

    @staticmethod
    def build(onnx_path: Path, out: Path, workspace_mb: int, progress: Callable[[str], None] = log.info) -> None:
        """Parse the ONNX into a strongly typed network and serialise an engine to `out` (atomically)."""
        trt = _import()
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        progress(f"parsing {onnx_path.name}")
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise LoadFailed(f"tensorrt could not parse {onnx_path.name}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
        progress("building engine (minutes on a Jetson)")
        blob = builder.build_serialized_network(network, config)
        if blob is None:
            raise LoadFailed(f"tensorrt failed to build an engine from {onnx_path.name}")
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(bytes(blob))
        os.replace(tmp, out)

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        opts = parse_options(TrtOptions, self.runtime, options)
        onnx_path = recipe_file(files, opts.precision)
        key = self.engine_key(hashlib.sha256(onnx_path.read_bytes()).hexdigest(), opts.precision)
        engine_path = Path(opts.cache_dir) / key.filename()
        if not engine_path.is_file():
            engine_path.parent.mkdir(parents=True, exist_ok=True)
            self.build(onnx_path, engine_path, opts.workspace_mb)
        trt = _import()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self._engine is None:
            raise LoadFailed(f"tensorrt could not deserialise {engine_path}")
        self._context = self._engine.create_execution_context()
        self._allocate(trt)
        self.options = opts

    def _allocate(self, trt: Any) -> None:
        import numpy as np

        cudart = _cudart()
        self._stream = _check(cudart.cudaStreamCreate())
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(self._engine.get_tensor_shape(name))
            host = np.empty(shape, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
            ptr = _check(cudart.cudaMalloc(host.nbytes))
            self._context.set_tensor_address(name, ptr)
            self._buffers[name] = (ptr, host, self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT)

    def infer(self, inputs: list[Array]) -> list[Array]:
        cudart = _cudart()
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        ins = [b for b in self._buffers.values() if b[2]]
        outs = [b for b in self._buffers.values() if not b[2]]
        for (ptr, host, _), tensor in zip(ins, inputs, strict=True):
            host[...] = tensor
            _check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, self._stream))
        if not self._context.execute_async_v3(self._stream):
            raise InferenceFailed("tensorrt execute_async_v3 returned false")
        for ptr, host, _ in outs:
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, d2h, self._stream))
        _check(cudart.cudaStreamSynchronize(self._stream))
        return [host.copy() for _, host, _ in outs]

    def executing(self) -> str:
        return "tensorrt/gpu" if self._engine is not None else "not loaded"

    def close(self) -> None:
        if self._buffers:
            cudart = _cudart()
            for ptr, _, _ in self._buffers.values():
                cudart.cudaFree(ptr)
        self._buffers, self._context, self._engine = {}, None, None
