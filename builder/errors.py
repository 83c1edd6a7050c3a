"""Errors of the builder; each message names the file, flag or target at fault."""

from __future__ import annotations

from typing import Any


class BuilderError(Exception):
    """Base class; shown to the user as is."""


class ModelInputError(BuilderError):
    """The model file is missing, not a model, or ambiguous."""


class CalibrationError(BuilderError):
    """The calibration or validation set is empty, unreadable or overlapping."""


class OutputError(BuilderError):
    """The output directory cannot be used."""


class TargetFailed(BuilderError):
    """One target could not be built; the others go on."""


class BuildFailed(BuilderError):
    """No target produced an artifact that passed its gate: nothing is signed or written."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


class KeyError_(BuilderError):
    """A signing key is missing, unreadable or would be overwritten."""


class ToolchainMissing(BuilderError):
    """An isolated converter toolchain is not installed."""


class ToolchainFailed(BuilderError):
    """Installing or running a toolchain failed."""
