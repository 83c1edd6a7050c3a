"""The explicit, lazy registry of runtime adapters: importing this never imports a runtime library."""

from __future__ import annotations

import importlib

from .adapters.base import Adapter, RuntimeInfo
from .errors import RuntimesError, RuntimeUnavailable

ADAPTERS: dict[str, str] = {
    "onnxruntime": "runtimes.adapters.onnxruntime:OnnxRuntimeAdapter",
    "openvino": "runtimes.adapters.openvino:OpenVinoAdapter",
    "tflite": "runtimes.adapters.tflite:TfliteAdapter",
    "tensorrt": "runtimes.adapters.tensorrt:TensorRtAdapter",
    "fake": "runtimes.adapters.fake:FakeAdapter",
}


def adapter_class(name: str) -> type[Adapter]:
    try:
        module_name, cls_name = ADAPTERS[name].split(":")
    except KeyError as exc:
        raise RuntimesError(f"unknown runtime {name!r}; known: {', '.join(ADAPTERS)}") from exc
    cls: type[Adapter] = getattr(importlib.import_module(module_name), cls_name)
    return cls


def create(name: str) -> Adapter:
    return adapter_class(name)()


def probe_all(include_fake: bool = False) -> dict[str, RuntimeInfo | RuntimeUnavailable]:
    """Every registered runtime: its info, or why it cannot run here. Never raises."""
    found: dict[str, RuntimeInfo | RuntimeUnavailable] = {}
    for name in ADAPTERS:
        if name == "fake" and not include_fake:
            continue
        try:
            found[name] = adapter_class(name).probe()
        except RuntimeUnavailable as exc:
            found[name] = exc
        except Exception as exc:  # a broken install must not stop the probe
            found[name] = RuntimeUnavailable(name, f"probe failed: {exc}")
    return found
