"""Each adapter on its own: the variants it offers for a device, and tensors in → tensors out on the real
runtimes installed here (TensorRT cannot run on this machine: skipped with the reason)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtimes import registry
from runtimes.adapters.base import HostTraits
from runtimes.errors import LoadFailed, RuntimeUnavailable
from tests.support.assets import MODEL

HOST = HostTraits(threads=(1, 2), cpu_flags=frozenset({"avx2"}))
AMX = HostTraits(threads=(4,), cpu_flags=frozenset({"amx_bf16"}))


def _variants(runtime: str, precision: str, devices: list[str], host: HostTraits = HOST,
              settings: dict[str, object] | None = None) -> list[tuple[str, dict[str, object], str]]:
    found = registry.adapter_class(runtime).variants(precision, settings or {}, devices, host)
    return [(v.device, v.settings, v.precision) for v in found]


def test_onnxruntime_measures_each_thread_count_and_each_accelerator() -> None:
    assert _variants("onnxruntime", "int8", ["cpu", "cuda"]) == [
        ("cpu", {"device": "cpu", "threads": 1}, "int8"), ("cpu", {"device": "cpu", "threads": 2}, "int8"),
        ("cuda", {"device": "cuda"}, "int8")]


def test_openvino_hints_precision_per_device() -> None:
    assert [s for _, s, _ in _variants("openvino", "int8", ["CPU"])] == [
        {"device": "CPU", "threads": 1}, {"device": "CPU", "threads": 2}]
    assert _variants("openvino", "fp16", ["GPU"]) == [("GPU", {"device": "GPU", "precision": "f16"}, "fp16")]
    assert [p for _, _, p in _variants("openvino", "fp32", ["CPU"], AMX)] == ["fp32", "bf16"]  # AMX: bf16 too


def test_tflite_and_tensorrt_variants() -> None:
    assert _variants("tflite", "int8", ["cpu"]) == [("cpu", {"threads": 1}, "int8"), ("cpu", {"threads": 2}, "int8")]
    assert _variants("tensorrt", "fp16", ["cuda:0"], settings={"precisions": ["fp16", "int8"]}) == [
        ("cuda:0", {"precision": "fp16"}, "fp16"), ("cuda:0", {"precision": "int8"}, "int8")]


@pytest.mark.parametrize(("runtime", "options"), [("onnxruntime", {"threads": 1}), ("openvino", {"threads": 1})])
def test_real_runtime_runs_the_real_model(runtime: str, options: dict[str, object]) -> None:
    adapter = registry.create(runtime)
    adapter.load([MODEL], options)
    out = adapter.infer([np.zeros((1, 3, 224, 224), np.float32)])
    adapter.close()
    assert out[0].shape == (1, 1000) and np.isfinite(out[0]).all() and adapter.executing()


def test_a_bad_option_names_the_key() -> None:
    with pytest.raises(LoadFailed, match="'thread'"):
        registry.create("onnxruntime").load([MODEL], {"thread": 2})


def test_a_missing_file_is_load_failed(tmp_path: Path) -> None:
    with pytest.raises(LoadFailed):
        registry.create("onnxruntime").load([tmp_path / "none.onnx"], {})


def test_tensorrt_is_unavailable_here_with_a_reason() -> None:
    try:
        registry.adapter_class("tensorrt").probe()
    except RuntimeUnavailable as exc:
        assert exc.reason
        return
    pytest.skip("TensorRT is installed here: its engine path is covered by the gpu-marked tests")
