"""What every task declares: how to read its outputs for one image, how to compare two runs of the same model
(the builder's gate and the device's golden check), and which images show a clear answer (golden choice).

A task is its spec class: the manifest's `postprocess` is one of them (tasks/__init__.py lists them), so adding
a task is one module and one line there. Specs name the model outputs they read; nothing relies on order."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from ..errors import ProcessingError
from ..geometry import Array, Transform

# A model's outputs by source-graph output name, float, batch first.
Outputs = dict[str, Array]
# (height, width) of the model input, in pixels.
Size = tuple[int, int]


@dataclass(frozen=True)
class Measure:
    key: str  # in report.json's and `build --json`'s "agreement"
    name: str  # in messages and the report
    higher_is_better: bool = True


class Answer(BaseModel):
    """One image's answer; its fields become fields of the MQTT result payload."""

    model_config = ConfigDict(extra="forbid")


class TaskSpec(BaseModel, abc.ABC):
    model_config = ConfigDict(extra="forbid", frozen=True)

    measures: ClassVar[tuple[Measure, ...]]
    # precision → measure key → the minimum the builder's gate asks of an artifact (overridable by flags)
    gates: ClassVar[dict[str, dict[str, float]]]
    # precision → measure key → the minimum the device's golden check asks (golden images have clear answers)
    golden: ClassVar[dict[str, dict[str, float]]]

    @abc.abstractmethod
    def output_names(self) -> list[str]:
        """The model outputs this spec reads ("" for "the model's only output" before the builder names it)."""

    @abc.abstractmethod
    def with_outputs(self, names: list[str]) -> TaskSpec:
        """This spec with every unnamed output resolved against the model's output names."""

    @abc.abstractmethod
    def decode(self, outputs: Outputs, index: int, size: Size, tf: Transform, labels: list[str]) -> Answer:
        """Image `index` of a batch of outputs → its answer, in frame coordinates."""

    @abc.abstractmethod
    def agreement(self, reference: Outputs, candidate: Outputs, size: Size) -> dict[str, float]:
        """Every measure of this task, candidate against reference, over the batch."""

    @abc.abstractmethod
    def margin(self, reference: Outputs, size: Size) -> Array:
        """Per image, how clear the reference answer is (larger: clearer); the golden images are the clearest."""

    @property
    def primary(self) -> Measure:
        return self.measures[0]


def label(labels: list[str], index: int) -> str:
    return labels[index] if 0 <= index < len(labels) else str(index)


def only_output(names: list[str], what: str) -> str:
    """The model's one output, or an error that lists them and says how to choose."""
    if len(names) != 1:
        raise ProcessingError(f"{what}: the model has {len(names)} outputs ({', '.join(names)}); name the one to read "
                         "in --postprocess")
    return names[0]


def resolve(name: str, names: list[str], what: str) -> str:
    if not name:
        return only_output(names, what)
    if name not in names:
        raise ProcessingError(f"{what}: no model output named {name!r} (outputs: {', '.join(names)})")
    return name


def batch(outputs: Outputs, name: str) -> Array:
    try:
        return outputs[name]
    except KeyError as exc:
        raise ProcessingError(f"output {name!r} missing (have {', '.join(outputs)})") from exc
