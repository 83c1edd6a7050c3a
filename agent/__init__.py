"""The device side: probe, selection, camera pipeline, model store, updates, telemetry."""

__version__ = "0.1.0"
