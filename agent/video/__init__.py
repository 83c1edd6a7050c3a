"""Frames in, answers out: cameras, the per-camera pipelines, batching across cameras, snapshots."""
