"""A loaded artifact with its manifest-driven pre/post-processing: frames or images in, answers out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import registry
from .adapters.base import Adapter
from .manifest import Artifact, Preprocess, TensorSpec, Tolerance
from .metrics import Agreement, agreement
from .processing import Array, Transform, dequantize, resize_frame, to_input
from .signature import to_artifact
from .tasks import Outputs, Postprocess, Size


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

    @property
    def size(self) -> Size:
        return self.pre.height, self.pre.width

    def infer_images(self, images: Array) -> Outputs:
        """uint8 NxHxWx3 (model colour order, model size) → dequantised float outputs by source name."""
        if self.fixed_batch and len(images) != self.fixed_batch:
            # Static-batch artifacts (most exports and everything from TFLite) take their batch at a time.
            step = self.fixed_batch
            parts = [self.infer_images(images[i : i + step]) for i in range(0, len(images), step)]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        raw = self.adapter.infer([to_input(images, self.pre, self.artifact.inputs[0])])
        return {s.key: _source_layout(dequantize(t, s), s) for t, s in zip(raw, self.artifact.outputs, strict=True)}

    def infer_tensor(self, tensor: Array, source: TensorSpec) -> Outputs:
        """The source graph's input (float, its layout, any batch) → outputs by source name: what the device's API
        serves, the same whatever artifact runs (runtimes/signature.py)."""
        step = self.fixed_batch or len(tensor)
        parts = [self.adapter.infer([to_artifact(tensor[i : i + step], source, self.artifact.inputs[0])])
                 for i in range(0, len(tensor), step)]
        return {s.key: np.concatenate([_source_layout(dequantize(p[j], s), s) for p in parts])
                for j, s in enumerate(self.artifact.outputs)}

    def infer_frame(self, frame_bgr: Array) -> tuple[Outputs, Transform]:
        image, tf = resize_frame(frame_bgr, self.pre)
        return self.infer_images(image[None]), tf

    def infer_frames(self, frames: list[Array]) -> list[tuple[Outputs, Transform]]:
        """Several frames in one call (one batch where the artifact takes a dynamic batch)."""
        pairs = [resize_frame(f, self.pre) for f in frames]
        outputs = self.infer_images(np.stack([image for image, _ in pairs]))
        return [({k: o[i : i + 1] for k, o in outputs.items()}, tf) for i, (_, tf) in enumerate(pairs)]

    @property
    def fixed_batch(self) -> int:
        """The artifact's static batch size, or 0 when its batch is dynamic."""
        shape = self.artifact.inputs[0].shape
        return shape[0] if shape and shape[0] > 0 else 0

    @property
    def batches(self) -> bool:
        """True when the artifact takes more than one image per call."""
        return self.fixed_batch != 1

    def close(self) -> None:
        self.adapter.close()


def _source_layout(tensor: Array, spec: TensorSpec) -> Array:
    return tensor.transpose(spec.perm) if spec.perm else tensor


def golden_agreement(model: LoadedModel, images: Array, reference: Outputs) -> Agreement:
    """Agreement of a loaded artifact with the FP32 reference outputs on the golden images."""
    return agreement(model.post, model.size, reference, model.infer_images(images))


def golden_failure(agreed: Agreement, tol: Tolerance) -> str | None:
    """Why a candidate fails its golden tolerance, or None when it passes."""
    short = agreed.shortfall(tol.min)
    if short:
        return f"golden {short}"
    if tol.max_abs is not None and agreed.max_abs > tol.max_abs:
        return f"golden max abs diff {agreed.max_abs:.4f} > {tol.max_abs:.4f}"
    return None
