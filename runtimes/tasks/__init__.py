"""The tasks a bundle can declare. `Postprocess` is the table: one line per task (and, inside `DetectSpec`,
one per detection format). The manifest's `postprocess` is one of these; its `kind` picks the task."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from ..errors import ProcessingError, first_error
from .base import Answer, Measure, Outputs, Size, TaskSpec
from .classify import ClassifyAnswer, ClassifySpec
from .detect import DetectAnswer, DetectBase, Detection
from .formats import DetectSpec
from .raw import OutputSummary, RawAnswer, RawSpec
from .segment import SegmentAnswer, SegmentSpec

Postprocess = Annotated[
    ClassifySpec | DetectSpec | SegmentSpec | RawSpec,
    Field(discriminator="kind"),
]
TASKS = ("classify", "detect", "segment", "raw")
_ADAPTER: TypeAdapter[Postprocess] = TypeAdapter(Postprocess)


def parse_postprocess(raw: dict[str, Any], where: str) -> Postprocess:
    """A post-processing spec from JSON; an error names the key."""
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise ProcessingError(f"{where}: postprocess key {key!r}: {msg}") from exc


__all__ = ["TASKS", "Answer", "ClassifyAnswer", "ClassifySpec", "DetectAnswer", "DetectBase", "DetectSpec",
           "Detection", "Measure", "OutputSummary", "Outputs", "Postprocess", "RawAnswer", "RawSpec",
           "SegmentAnswer", "SegmentSpec", "Size", "TaskSpec", "parse_postprocess"]
