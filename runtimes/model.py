"""A loaded artifact with its manifest-driven pre/post-processing: frames or images in, answers out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import registry
from .adapters.base import Adapter
from .manifest import Artifact, Postprocess, Preprocess, Tolerance
from .metrics import Agreement, agreement
from .processing import Array, Transform, dequantize, resize_frame, to_input


@dataclass
class LoadedModel:
    pre: Preprocess
    post: Postprocess
    artifact: Artifact
    adapter: Adapter
    options: dict[str, Any]

    @classmethod
    def load(cls, pre: Preprocess, post: Postprocess, artifact: Artifact, files: list[Path], runtime: str,
             options: dict[str, Any]) -> LoadedModel:
        adapter = registry.create(runtime)
        adapter.load(files, options)
        return cls(pre, post, artifact, adapter, options)

    def infer_images(self, images: Array) -> list[Array]:
        """uint8 NxHxWx3 (model colour order, model size) → dequantised float outputs."""
        spec = self.artifact.inputs[0]
        batch = spec.shape[0] if spec.shape and spec.shape[0] > 0 else 0
        if batch == 1 and len(images) > 1:
            # Static batch-1 artifacts (TFLite, TensorRT) take one image at a time.
            parts = [self.infer_images(images[i : i + 1]) for i in range(len(images))]
            return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]
        raw = self.adapter.infer([to_input(images, self.pre, spec)])
        return [dequantize(t, s) for t, s in zip(raw, self.artifact.outputs, strict=True)]

    def infer_frame(self, frame_bgr: Array) -> tuple[list[Array], Transform]:
        image, tf = resize_frame(frame_bgr, self.pre)
        return self.infer_images(image[None]), tf

    def infer_frames(self, frames: list[Array]) -> list[tuple[list[Array], Transform]]:
        """Several frames in one call (one batch where the artifact takes a dynamic batch)."""
        pairs = [resize_frame(f, self.pre) for f in frames]
        outputs = self.infer_images(np.stack([image for image, _ in pairs]))
        return [([o[i : i + 1] for o in outputs], tf) for i, (_, tf) in enumerate(pairs)]

    @property
    def batches(self) -> bool:
        """True when the artifact takes more than one image per call."""
        shape = self.artifact.inputs[0].shape
        return not shape or shape[0] != 1

    def close(self) -> None:
        self.adapter.close()


def golden_agreement(model: LoadedModel, images: Array, reference: Array) -> Agreement:
    """Agreement of a loaded artifact with the FP32 reference outputs on the golden images."""
    return agreement(model.post, model.pre, reference, model.infer_images(images)[0])


def golden_failure(agreement: Agreement, tol: Tolerance) -> str | None:
    """Why a candidate fails its golden tolerance, or None when it passes."""
    strict, loose = agreement.names()
    if agreement.top1 < tol.top1_min:
        return f"golden {strict} {agreement.top1:.2f} < {tol.top1_min:.2f}"
    if agreement.top5 < tol.top5_min:
        return f"golden {loose} {agreement.top5:.2f} < {tol.top5_min:.2f}"
    if tol.max_abs is not None and agreement.max_abs > tol.max_abs:
        return f"golden max abs diff {agreement.max_abs:.4f} > {tol.max_abs:.4f}"
    return None
