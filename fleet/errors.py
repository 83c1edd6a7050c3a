"""Errors of the fleet package; the CLI turns them into one clear line and a non-zero exit."""

from __future__ import annotations


class FleetError(Exception):
    """Base class; the message is shown to the user as is."""


class KeyError_(FleetError):
    """A signing key is missing, unreadable or would be overwritten."""


class ToolchainMissing(FleetError):
    """An isolated converter toolchain is not installed."""


class ToolchainFailed(FleetError):
    """Installing or running a toolchain failed."""
