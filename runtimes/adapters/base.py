"""The small contract every runtime adapter keeps: load, infer, close, and say what really runs."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import LoadFailed, first_error
from ..processing import Array


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
class RuntimeInfo:
    name: str
    version: str
    devices: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Adapter(abc.ABC):
    runtime: ClassVar[str]
    options_model: ClassVar[type[Options]]
    # Artifact formats (manifest `runtime` values) this adapter can load.
    formats: ClassVar[tuple[str, ...]]

    def __init__(self) -> None:
        self.options: Options | None = None

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> RuntimeInfo:
        """Version and devices; raises RuntimeUnavailable when the library is missing or broken."""

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
