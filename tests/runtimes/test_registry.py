"""The lazy registry: one line per runtime, the formats it loads, and a new runtime added from a test with
exactly that: its adapter (here, in this file) and its registry line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from agent.inference import selection
from agent.inference.probe import RuntimeFound
from runtimes import registry
from runtimes.adapters.base import Options, RuntimeInfo
from runtimes.adapters.fake import FakeAdapter
from runtimes.bundle import open_bundle
from runtimes.errors import RuntimesError, RuntimeUnavailable
from runtimes.manifest import Artifact
from tests.support import fakebundle


class EchoAdapter(FakeAdapter):
    """A 'new runtime' that loads the fake format: everything it needs is this class and one registry line."""

    runtime: ClassVar[str] = "echo"
    options_model: ClassVar[type[Options]] = Options

    @classmethod
    def probe(cls) -> RuntimeInfo:
        return RuntimeInfo("echo", "0.1", ["cpu"])


def test_every_runtime_names_the_formats_it_loads() -> None:
    assert registry.loads("openvino", "onnx") and registry.loads("onnxruntime", "onnx")
    assert not registry.loads("tflite", "onnx") and not registry.loads("nonesuch", "onnx")
    assert {"onnx", "openvino", "tflite", "tensorrt"} <= registry.formats()


def test_an_unknown_runtime_is_one_clear_error() -> None:
    with pytest.raises(RuntimesError, match="unknown runtime 'nonesuch'; known: onnxruntime"):
        registry.create("nonesuch")


def test_a_broken_install_is_unavailable_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.ADAPTERS, "broken", registry.Entry("runtimes.adapters.nonesuch:X", ("onnx",)))
    found = registry.probe_all()["broken"]
    assert isinstance(found, RuntimeUnavailable) and "nonesuch" in found.reason


def test_the_manifest_takes_formats_from_the_registry() -> None:
    base: dict[str, Any] = {"target": "t", "precision": "fp32", "files": ["a"], "inputs": [], "outputs": []}
    assert Artifact.model_validate({**base, "runtime": "onnxruntime"}).format == "onnx"  # bundles before `format`
    with pytest.raises(ValueError, match="unknown artifact format 'pytorch'"):
        Artifact.model_validate({**base, "format": "pytorch"})


def test_a_new_runtime_is_its_adapter_plus_one_registry_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.ADAPTERS, "echo", registry.Entry(f"{__name__}:EchoAdapter", ("fake",)))
    bundle = open_bundle(fakebundle.make(tmp_path / "b", {"onnx-fp32": {}}), allow_unsigned=True)
    probe = fakebundle.FAKE_PROBE.model_copy(update={"runtimes": {"echo": RuntimeFound(version="0.1",
                                                                                         devices=["cpu"])}})
    chosen = selection.select(bundle, probe, budget_s=1.0)
    assert chosen.selected.runtime == "echo" and chosen.selected.status == "ok"
