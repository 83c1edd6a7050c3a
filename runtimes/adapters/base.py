"""The small contract every runtime adapter keeps: load, infer, close, and say what really runs."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import LoadFailed, first_error
from ..geometry import Array


class Options(BaseModel):
    """Base of each adapter's own options; unknown keys are an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=Options)


def parse_options(model: type[OptionsT], runtime: str, raw: dict[str, Any]) -> OptionsT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        key, msg = first_error(exc)
        raise LoadFailed(f"{runtime}: bad option {key!r} in {raw}: {msg}") from exc


@dataclass(frozen=True)
class HostTraits:
    """What a runtime's variants depend on in the device, as the agent's probe found it."""

    threads: tuple[int, ...]  # inference thread counts worth measuring
    cpu_flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Variant:
    """One way to run an artifact: a device, the adapter's load options, the precision it really computes in
    (which picks the golden tolerance)."""

    device: str
    settings: dict[str, Any]
    precision: str


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    version: str
    devices: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Adapter(abc.ABC):
    runtime: ClassVar[str]
    options_model: ClassVar[type[Options]]

    def __init__(self) -> None:
        self.options: Options | None = None

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> RuntimeInfo:
        """Version and devices; raises RuntimeUnavailable when the library is missing or broken."""

    @classmethod
    def variants(cls, precision: str, settings: dict[str, Any], devices: list[str],
                 host: HostTraits) -> list[Variant]:
        """Every setting worth measuring for an artifact of this precision (its manifest `settings` given)
        on the devices the probe found. The default: its first device, as is."""
        return [Variant(d, {}, precision) for d in devices[:1]]

    @abc.abstractmethod
    def load(self, files: list[Path], options: dict[str, Any]) -> None:
        """Load an artifact's files; raise LoadFailed (or RuntimeUnavailable)."""

    @abc.abstractmethod
    def infer(self, inputs: list[Array]) -> list[Array]:
        """Tensors in, tensors out, in the order of the artifact's specs; raise InferenceFailed."""

    @abc.abstractmethod
    def executing(self) -> str:
        """What actually executes after load, e.g. 'CPUExecutionProvider' or 'CPU/f32'."""

    def close(self) -> None:  # noqa: B027 - most runtimes free on garbage collection
        """Release the runtime's resources."""
