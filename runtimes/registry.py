"""The explicit, lazy registry of runtime adapters: importing this never imports a runtime library."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .adapters.base import Adapter, RuntimeInfo
from .errors import RuntimesError, RuntimeUnavailable


@dataclass(frozen=True)
class Entry:
    path: str  # "module:Class", imported only when the runtime is probed or used
    formats: tuple[str, ...]  # the artifact formats (manifest `format`) it loads


# Adding a runtime is its adapter module plus one line here; a new artifact format is named here too.
ADAPTERS: dict[str, Entry] = {
    "onnxruntime": Entry("runtimes.adapters.onnxruntime:OnnxRuntimeAdapter", ("onnx",)),
    "openvino": Entry("runtimes.adapters.openvino:OpenVinoAdapter", ("openvino", "onnx")),
    "tflite": Entry("runtimes.adapters.tflite:TfliteAdapter", ("tflite",)),
    "tensorrt": Entry("runtimes.adapters.tensorrt:TensorRtAdapter", ("tensorrt",)),
    "fake": Entry("runtimes.adapters.fake:FakeAdapter", ("fake",)),
}


def formats() -> frozenset[str]:
    """Every artifact format some registered runtime loads: what a manifest may name."""
    return frozenset(f for entry in ADAPTERS.values() for f in entry.formats)


def loads(runtime: str, fmt: str) -> bool:
    entry = ADAPTERS.get(runtime)
    return entry is not None and fmt in entry.formats


def adapter_class(name: str) -> type[Adapter]:
    try:
        module_name, cls_name = ADAPTERS[name].path.split(":")
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
