"""TFLite through ai-edge-litert (preferred) or tflite-runtime; XNNPACK on CPU, EdgeTPU when present."""

from __future__ import annotations

import ctypes.util
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import InferenceFailed, LoadFailed, RuntimeUnavailable
from ..processing import Array
from .base import Adapter, HostTraits, Options, RuntimeInfo, Variant, parse_options


class TfliteOptions(Options):
    # LiteRT defaults to one thread: always set it.
    threads: int = os.cpu_count() or 1
    delegate: Literal["xnnpack", "edgetpu"] = "xnnpack"


def _import() -> tuple[Any, str, str]:
    """The Interpreter module, the distribution name and its version."""
    from importlib import metadata

    try:
        from ai_edge_litert import interpreter

        return interpreter, "ai-edge-litert", metadata.version("ai-edge-litert")
    except ImportError as first:
        try:
            from tflite_runtime import interpreter

            return interpreter, "tflite-runtime", metadata.version("tflite-runtime")
        except ImportError as exc:
            raise RuntimeUnavailable("tflite", f"neither ai-edge-litert ({first}) nor tflite-runtime ({exc})") from exc


def edgetpu_library() -> str | None:
    return ctypes.util.find_library("edgetpu")


class TfliteAdapter(Adapter):
    runtime: ClassVar[str] = "tflite"
    options_model: ClassVar[type[Options]] = TfliteOptions

    def __init__(self) -> None:
        super().__init__()
        self._interp: Any = None
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._dist = ""
        self._executing = "not loaded"

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        return [Variant("cpu", {"threads": t}, precision) for t in host.threads]

    @classmethod
    def probe(cls) -> RuntimeInfo:
        _, dist, version = _import()
        devices = ["cpu"] + (["edgetpu"] if edgetpu_library() else [])
        return RuntimeInfo("tflite", version, devices, notes=[f"via {dist}"])

    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        opts = parse_options(TfliteOptions, self.runtime, options)
        module, self._dist, _ = _import()
        delegates = []
        if opts.delegate == "edgetpu":
            lib = edgetpu_library()
            if lib is None:
                raise RuntimeUnavailable("tflite", "EdgeTPU delegate requested but libedgetpu is not installed")
            delegates.append(module.load_delegate(lib))
        try:
            self._interp = module.Interpreter(model_path=str(files[0]), num_threads=opts.threads,
                                              experimental_delegates=delegates or None)
            self._interp.allocate_tensors()
        except Exception as exc:
            raise LoadFailed(f"{self._dist} could not load {files[0].name}: {exc}") from exc
        self._inputs = [d["index"] for d in self._interp.get_input_details()]
        self._outputs = [d["index"] for d in self._interp.get_output_details()]
        self.options = opts
        self._executing = f"{opts.delegate}/{opts.threads}t ({self._dist})"

    def infer(self, inputs: list[Array]) -> list[Array]:
        try:
            for index, tensor in zip(self._inputs, inputs, strict=True):
                self._interp.set_tensor(index, tensor)
            self._interp.invoke()
            return [self._interp.get_tensor(i).copy() for i in self._outputs]
        except Exception as exc:
            raise InferenceFailed(f"{self._dist}: {exc}") from exc

    def executing(self) -> str:
        if self._interp is None:
            return "not loaded"
        return self._executing

    def close(self) -> None:
        self._interp = None
