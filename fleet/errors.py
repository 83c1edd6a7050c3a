"""Errors of the fleet package; the CLI turns them into one clear line and a non-zero exit."""

from __future__ import annotations


class FleetError(Exception):
    """Base class; the message is shown to the user as is."""
