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
