"""Accuracy and latency of every artifact on the build host, through runtimes/ like a device would."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.manifest import Artifact, Preprocess, TensorSpec
from runtimes.metrics import Agreement, agreement
from runtimes.model import LoadedModel
from runtimes.processing import Array, to_input
from runtimes.tasks import Outputs, Postprocess

from . import onnxrun
from .targets import TargetDef

LATENCY_RUNS = 30
GOLDEN_COUNT = 8


@dataclass(frozen=True)
class Evaluation:
    agreement: Agreement
    latency_ms: float
    executed_on: str


def reference_outputs(source: Path, pre: Preprocess, tspec: TensorSpec, images: Array) -> Outputs:
    """FP32 outputs of the source graph, every output by name: the reference every artifact is compared with."""
    return onnxrun.run(source, to_input(images, pre, tspec.model_copy(update={"dtype": "float32"})))


def choose_golden(reference: Outputs, post: Postprocess, size: tuple[int, int], count: int = GOLDEN_COUNT) -> Array:
    """Indices of the images with the clearest FP32 answer: a sound artifact agrees on them, so the
    device's check separates broken from merely quantised."""
    chosen: Array = np.sort(np.argsort(-post.margin(reference, size), kind="stable")[:count])
    return chosen


def evaluate(target: TargetDef, artifact: Artifact, root: Path, pre: Preprocess, post: Postprocess,
             images: Array, reference: Outputs) -> Evaluation:
    files = [root / f for f in artifact.files]
    model = LoadedModel.load(pre, post, artifact, files[target.check_file :], target.check_runtime,
                             target.check_options)
    try:
        agreed = agreement(post, model.size, reference, model.infer_images(images))
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
