"""Bundle format, pre/post-processing and one adapter per runtime.

Imports nothing of ours and no runtime library: adapters load lazily through `registry`.
"""

from .errors import (
    BundleError,
    InferenceFailed,
    LoadFailed,
    ProcessingError,
    RuntimesError,
    RuntimeUnavailable,
)
from .registry import ADAPTERS, adapter_class, create, probe_all

__all__ = [
    "ADAPTERS",
    "BundleError",
    "InferenceFailed",
    "LoadFailed",
    "ProcessingError",
    "RuntimeUnavailable",
    "RuntimesError",
    "adapter_class",
    "create",
    "probe_all",
]
