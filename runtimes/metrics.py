"""Agreement between an artifact's outputs and the FP32 reference, for the builder's gate and the device's
golden check: the task's own measures (tasks/), plus the largest absolute difference of the outputs read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tasks import Measure, Outputs, Postprocess, Size


@dataclass(frozen=True)
class Agreement:
    values: dict[str, float]
    count: int
    max_abs: float
    measures: tuple[Measure, ...]

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 4) for k, v in self.values.items()}

    @property
    def primary(self) -> tuple[Measure, float]:
        m = self.measures[0]
        return m, self.values[m.key]

    def shortfall(self, minimums: dict[str, float]) -> str | None:
        """Why these values miss the minimums (one line naming the measure), or None."""
        for measure in self.measures:
            if measure.key not in minimums or measure.key not in self.values:
                continue
            value, bound = self.values[measure.key], minimums[measure.key]
            if measure.higher_is_better and value < bound:
                return f"{measure.name} {value:.3f} below {bound:.2f}"
            if not measure.higher_is_better and value > bound:
                return f"{measure.name} {value:.3f} above {bound:.2f}"
        return None


def agreement(post: Postprocess, size: Size, reference: Outputs, candidate: Outputs) -> Agreement:
    names = post.output_names()
    worst = max((float(np.abs(reference[n].astype(np.float32) - candidate[n].astype(np.float32)).max())
                 for n in names if n in reference and n in candidate and reference[n].shape == candidate[n].shape),
                default=0.0)
    count = len(reference[names[0]]) if names and names[0] in reference else 0
    return Agreement(post.agreement(reference, candidate, size), count, worst, post.measures)
