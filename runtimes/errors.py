"""Errors raised by the runtimes package. Third-party exceptions are translated into these."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The dotted key and message of a validation error's first problem, for messages that name the key."""
    err = exc.errors()[0]
    return ".".join(str(p) for p in err["loc"]) or "(payload)", err["msg"]


class RuntimesError(Exception):
    """Base class of every error this package raises."""


class RuntimeUnavailable(RuntimesError):
    """A runtime library is missing or cannot run here."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"runtime {name!r} unavailable: {reason}")
        self.name = name
        self.reason = reason


class LoadFailed(RuntimesError):
    """The runtime is present but could not load an artifact."""


class InferenceFailed(RuntimesError):
    """The runtime raised during inference."""


class BundleError(RuntimesError):
    """A bundle is malformed, incomplete, tampered with or unsigned; the message names the file or key."""


class ProcessingError(RuntimesError):
    """Pre- or post-processing could not handle an input."""
