"""Errors of the agent; each names the file, key, topic or candidate at fault."""

from __future__ import annotations


class AgentError(Exception):
    """Base class."""


class NoCandidate(AgentError):
    """Every candidate failed: one error that lists every cause."""

    def __init__(self, causes: list[str]) -> None:
        super().__init__("no candidate can run this bundle here:\n  " + "\n  ".join(causes))
        self.causes = causes


class ConfigError(AgentError):
    """A config file or flag is invalid; the message names the key."""


class ApiError(AgentError):
    """A request the device's API refuses: its HTTP status and one line naming the field, model or limit.
    Each protocol renders it its own way (KServe's {"error"}, TF Serving's, DeepStack's, a gRPC status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Busy(ApiError):
    """The model's queue is full: 429 (gRPC RESOURCE_EXHAUSTED)."""

    def __init__(self, model: str, queue: int) -> None:
        super().__init__(429, f"model {model}: {queue} requests are already waiting; try again later")


class Late(ApiError):
    """Not answered within the deadline: 503 (gRPC UNAVAILABLE)."""

    def __init__(self, model: str, deadline_ms: float) -> None:
        super().__init__(503, f"model {model}: not answered within the {deadline_ms:.0f} ms deadline")
