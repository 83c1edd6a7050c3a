"""The source model's signature, whatever artifact serves: what a client of the device's API sends (the FP32
source graph's input, preprocessed) and gets (its outputs by source name, in its layout, as float). A
re-selection or a failover changes the artifact, never this."""

from __future__ import annotations

import numpy as np

from .errors import ProcessingError
from .manifest import Artifact, Manifest, TensorSpec
from .processing import Array

# Artifacts converted from the ONNX source keep its input layout; TFLite's are NHWC whatever the source was.
_SOURCE_LAYOUT_FORMATS = ("onnx", "openvino", "tensorrt")


def source_input(manifest: Manifest) -> TensorSpec:
    """The FP32 source graph's input as the builder read it (the ONNX FP32 artifact's, else any ONNX-derived
    artifact's in float); batch -1 where the artifact fixed it to 1, since a client may send several."""
    first = _nearest_source(manifest)
    if first is None:
        raise ProcessingError(f"bundle {manifest.name}: no artifact to read the model's input from")
    spec = first.inputs[0]
    shape = [-1, *spec.shape[1:]] if spec.shape else spec.shape
    return TensorSpec(name=spec.name, shape=shape, dtype=spec.dtype if spec.quant is None else "float32",
                      layout=spec.layout)


def source_outputs(manifest: Manifest) -> list[TensorSpec]:
    """The outputs a client gets: by source name, float, in the source layout (batch first)."""
    first = _nearest_source(manifest)
    if first is None:
        return []
    return [TensorSpec(name=s.key, shape=[-1, *_source_shape(s)[1:]], dtype="float32") for s in first.outputs]


def _nearest_source(manifest: Manifest) -> Artifact | None:
    """The artifact closest to the source graph: ONNX-derived (its layout) and FP32 first."""
    return min(manifest.artifacts, key=lambda a: (a.format not in _SOURCE_LAYOUT_FORMATS, a.precision != "fp32"),
               default=None)


def _source_shape(spec: TensorSpec) -> list[int]:
    return [spec.shape[p] for p in spec.perm] if spec.perm and len(spec.perm) == len(spec.shape) else spec.shape


def check_shape(tensor: Array, spec: TensorSpec, where: str) -> None:
    """A client's tensor against the source input: rank and every fixed dimension but the batch."""
    if tensor.ndim != len(spec.shape):
        raise ProcessingError(f"{where}: shape {list(tensor.shape)} has {tensor.ndim} dimensions; "
                              f"the model's input {spec.name} has {len(spec.shape)} ({spec.shape})")
    for axis, (got, want) in enumerate(zip(tensor.shape[1:], spec.shape[1:], strict=True), start=1):
        if want > 0 and got != want:
            raise ProcessingError(f"{where}: shape {list(tensor.shape)} differs from the model's input "
                                  f"{spec.name} {spec.shape} at axis {axis}")


def to_artifact(tensor: Array, source: TensorSpec, spec: TensorSpec) -> Array:
    """A float tensor in the source's layout → what this artifact's input takes (layout, dtype, quantization)."""
    x = tensor.astype(np.float32, copy=False)
    if source.layout and spec.layout and source.layout != spec.layout and x.ndim == 4:
        x = x.transpose(0, 2, 3, 1) if spec.layout == "NHWC" else x.transpose(0, 3, 1, 2)
    if spec.dtype in ("int8", "uint8") and spec.quant is not None:
        info = np.iinfo(np.dtype(spec.dtype))
        q = np.rint(x / spec.quant.scale + spec.quant.zero_point)
        return np.ascontiguousarray(np.clip(q, info.min, info.max).astype(spec.dtype))
    return np.ascontiguousarray(x.astype(spec.dtype, copy=False))

