"""Which backend opens a camera source: above both (capture.py and gst.py), so neither imports the other."""

from __future__ import annotations

from .capture import Capture, OpenCvCapture, SourceOptions


def wants_gstreamer(source: str, opts: SourceOptions) -> bool:
    if opts.decoder != "auto":
        return opts.decoder == "gstreamer"
    return "!" in source or (source.startswith(("rtsp://", "rtsps://")) and bool(opts.hw_decoders))


def open_source(source: str, opts: SourceOptions) -> Capture | None:
    """The source opened by the backend it needs; None when it cannot be opened now (retry later).
    CaptureUnavailable when it never can on this device."""
    if wants_gstreamer(source, opts):
        from .gst import GstCapture  # lazily: PyGObject only where a GStreamer source is used

        return GstCapture.open(source, opts)
    return OpenCvCapture.open(source, opts)
