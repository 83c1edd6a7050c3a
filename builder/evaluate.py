"""Accuracy and latency of every artifact on the build host, through runtimes/ like a device would."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.manifest import Artifact, Postprocess, Preprocess, TensorSpec
from runtimes.metrics import Agreement, agreement
from runtimes.model import LoadedModel
from runtimes.processing import Array, probabilities, to_input

from .targets import TargetDef

LATENCY_RUNS = 30
GOLDEN_COUNT = 8


@dataclass(frozen=True)
class Evaluation:
    agreement: Agreement
    latency_ms: float
    executed_on: str


def reference_outputs(source: Path, pre: Preprocess, tspec: TensorSpec, images: Array) -> Array:
    """FP32 outputs of the source graph: the reference every artifact is compared with."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    x = to_input(images, pre, tspec.model_copy(update={"dtype": "float32"}))
    batches = [session.run(None, {tspec.name: x[i : i + 16]})[0] for i in range(0, len(x), 16)]
    out: Array = np.concatenate(batches).astype(np.float32)
    return out


def choose_golden(reference: Array, post: Postprocess, count: int = GOLDEN_COUNT) -> Array:
    """Indices of the images with the clearest FP32 answer: a sound artifact agrees on them, so the
    device's check separates broken from merely quantised."""
    margin = _detect_margin(reference, post) if post.kind == "detect" else _classify_margin(reference, post)
    chosen: Array = np.sort(np.argsort(-margin)[:count])
    return chosen


def _classify_margin(reference: Array, post: Postprocess) -> Array:
    """Top-1 − top-2 probability."""
    top2 = np.sort(probabilities(reference, post), axis=1)[:, -2:]
    out: Array = top2[:, 1] - top2[:, 0]
    return out


def _detect_margin(reference: Array, post: Postprocess) -> Array:
    """How far the nearest score sits from the threshold (no box flips in or out under quantisation),
    images with at least one detection first."""
    scores = reference.reshape(len(reference), -1, reference.shape[-1])[:, :, 4:].max(axis=2)
    nearest = np.abs(scores - post.score_threshold).min(axis=1)
    has_box = (scores >= post.score_threshold).any(axis=1)
    out: Array = nearest + has_box.astype(np.float32)
    return out


def evaluate(target: TargetDef, artifact: Artifact, root: Path, pre: Preprocess, post: Postprocess,
             images: Array, reference: Array) -> Evaluation:
    files = [root / f for f in artifact.files]
    model = LoadedModel.load(pre, post, artifact, files[target.check_file :], target.check_runtime,
                             target.check_options)
    try:
        agreed = agreement(post, pre, reference, model.infer_images(images)[0])
        latency = _latency(model, images[:1])
        return Evaluation(agreed, latency, model.adapter.executing())
    finally:
        model.close()


def _latency(model: LoadedModel, image: Array) -> float:
    tensor = to_input(image, model.pre, model.artifact.inputs[0])
    for _ in range(5):
        model.adapter.infer([tensor])
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        model.adapter.infer([tensor])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
