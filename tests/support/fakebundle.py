"""A bundle of fake-runtime artifacts whose golden reference the fake model itself produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from agent.inference.probe import Cpu, Probe, RuntimeFound
from runtimes.bundle import file_entry, open_bundle
from runtimes.manifest import Artifact, Golden, Manifest, Preprocess, Source, TensorSpec
from runtimes.tasks import ClassifySpec

SEED, CLASSES = 7, 5


def make(root: Path, artifacts: dict[str, dict[str, Any]]) -> Path:
    """artifacts: target name → fake options (latency_ms, noise, fail_after, hang_after …)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
    images[:, :, :, 0] = np.arange(4)[:, None, None] * 60  # distinct, clear answers
    from runtimes.adapters.fake import fake_logits
    from runtimes.processing import to_input

    pre = Preprocess(height=8, width=8, resize="stretch")
    spec = TensorSpec(name="x", shape=[-1, 3, 8, 8], layout="NCHW")
    (root / "golden").mkdir(exist_ok=True)
    np.save(root / "golden" / "images.npy", images)
    np.save(root / "golden" / "reference.npy", fake_logits(to_input(images, pre, spec), SEED, CLASSES))
    arts = []
    for target, options in artifacts.items():
        (root / target).mkdir(exist_ok=True)
        (root / target / "model.json").write_text(json.dumps({"seed": SEED, "classes": CLASSES}))
        arts.append(Artifact(target=target, format="fake", precision="fp32",
                             files=[f"{target}/model.json"], inputs=[spec],
                             outputs=[TensorSpec(name="y", shape=[-1, CLASSES])], settings={"options": options}))
    files = [file_entry(root, p.relative_to(root).as_posix()) for p in sorted(root.rglob("*")) if p.is_file()
             and p.name not in ("manifest.json", "manifest.sig")]
    manifest = Manifest(name="fake", version=1, created="2026-01-01T00:00:00+00:00",
                        source=Source(filename="fake", sha256="0" * 64, format="onnx"), task="classify",
                        labels=[f"c{i}" for i in range(CLASSES)], preprocess=pre,
                        postprocess=ClassifySpec(output="y"), artifacts=arts,
                        golden=Golden(images="golden/images.npy", reference="golden/reference.npy", count=4,
                                      outputs=["y"]),
                        files=files)
    (root / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    open_bundle(root)  # self-check
    return root


# A device with two cores and only the fake runtime (a test bundle's artifacts load nowhere else).
FAKE_PROBE = Probe(arch="x86_64", os="Linux", cpu=Cpu(model="test", cores=2), memory_mb=1024,
                   runtimes={"fake": RuntimeFound(version="1.0", devices=["cpu"])})
