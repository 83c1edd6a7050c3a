"""GStreamer directly through PyGObject (the PyPI OpenCV is built without GStreamer): a pipeline string a
user wrote, or a camera URL decoded by the hardware decoder the probe found (decodebin picks it because its
rank is raised above the software decoders').

Frames leave through an appsink as BGR. Their time is the buffer's own timestamp on the pipeline clock
(CLOCK_MONOTONIC, as `time.monotonic()`) for live sources: when the packets arrived, before the jitter
buffer and the decoder. Decode CPU is read in the streaming thread that delivers the frame (depayload,
parse, decode and convert all run there when the decoder has one thread).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from typing import Any

import numpy as np

from .capture import CaptureUnavailable, Frame, SourceOptions, redact

log = logging.getLogger(__name__)

# Hardware decoder → what brings its frames into system memory before videoconvert. One line per family.
HARDWARE: dict[str, str] = {
    "nvv4l2decoder": "nvvidconv ! video/x-raw,format=BGRx ! ",  # Jetson: NVMM buffers
    "nvh264dec": "", "nvh265dec": "",  # NVIDIA desktop GPUs (nvcodec): system memory when asked for
    "vah264dec": "", "vah265dec": "",  # VA-API, GStreamer's va plugin (Intel, AMD)
    "vaapih264dec": "", "vaapih265dec": "",  # VA-API, gstreamer-vaapi
    "v4l2h264dec": "", "v4l2h265dec": "",  # V4L2 stateful decoders (Raspberry Pi, many Arm SoCs)
}
SOFTWARE = ("avdec_h264", "avdec_h265", "openh264dec", "libde265dec", "avdec_mjpeg", "jpegdec")
SINK = "edgectl_sink"
TAIL = f"videoconvert ! video/x-raw,format=BGR ! appsink name={SINK} emit-signals=true max-buffers=2 drop=true " \
       "sync=false"
_TRAILING_SINK = re.compile(r"!\s*appsink\b[^!]*$")
_init = threading.Lock()
RELEASE_S = 3.0


def gst() -> Any:
    """The Gst module, initialised; CaptureUnavailable with what to install when it is missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import Gst, GstVideo  # noqa: F401  (GstVideo: the caps' strides)
    except (ImportError, ValueError) as exc:
        raise CaptureUnavailable(f"GStreamer sources need PyGObject and the system GStreamer ({exc}): install "
                                 "python3-gi and gir1.2-gstreamer-1.0, or pip install 'edgectl[gstreamer]'") from exc
    with _init:
        Gst.init(None)
    return Gst


_FIND = """
import json, sys
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
print(json.dumps([Gst.version_string(), [n for n in sys.argv[1:] if Gst.ElementFactory.find(n) is not None]]))
"""


def find_elements(names: tuple[str, ...]) -> tuple[str | None, list[str]]:
    """GStreamer's version and which of `names` it has, or (None, []) without GStreamer. Asked in a child
    process: the probe must not load GStreamer into a process that may never use it (a builder, a test)."""
    import json
    import subprocess
    import sys

    try:
        proc = subprocess.run([sys.executable, "-c", _FIND, *names], capture_output=True, text=True, timeout=30,
                              check=False)
        version, present = json.loads(proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None, []
    return str(version), [str(n) for n in present]


def pipeline_for(source: str, opts: SourceOptions) -> str:
    """A user's pipeline gets our BGR appsink as its tail; a URL, file or device gets decodebin."""
    if "!" in source:
        return f"{_TRAILING_SINK.sub('', source.strip()).rstrip()} ! {TAIL}"
    convert = HARDWARE.get(opts.hw_decoders[0], "") if opts.hw_decoders else ""
    if source.startswith(("rtsp://", "rtsps://")):
        head = f"rtspsrc name=src latency={opts.jitter_ms}"
    elif source.isdigit() or source.startswith("/dev/"):
        head = "v4l2src name=src"
    else:
        head = "uridecodebin name=src"
        return f"{head} ! {convert}{TAIL}"
    return f"{head} ! decodebin ! {convert}{TAIL}"


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without user:password@, the user, the password), percent-decoded; the last '@' ends them."""
    from urllib.parse import unquote

    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if not sep or "@" not in netloc:
        return url, None, None
    userinfo, host = netloc.rsplit("@", 1)
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{slash}{path}", unquote(user), unquote(password)


def _locate(src: Any, source: str, stall_s: float) -> None:
    from pathlib import Path

    name = src.get_factory().get_name()
    if name == "rtspsrc":  # properties, not parse text; rtspsrc's URL parser stops at a password's '@' or ':'
        location, user, password = split_credentials(source)
        src.set_property("location", location)
        src.set_property("tcp-timeout", int(stall_s * 1_000_000))  # µs; a dead server must not hold a teardown
        if user is not None:
            src.set_property("user-id", user)
            src.set_property("user-pw", password or "")
    elif name == "v4l2src":
        src.set_property("device", f"/dev/video{source}" if source.isdigit() else source)
    else:
        src.set_property("uri", source if "://" in source else Path(source).resolve().as_uri())


TRY, SKIP = 0, 2  # GstAutoplugSelectResult, which is not in the typelib


class Preferred:
    """decodebin's choice of decoder: a software decoder is skipped where one of the probe's hardware
    decoders takes the same caps. (Raising their rank is not enough: decodebin caches its factory list.)
    A decoder that takes only byte-stream H.264 is not offered for an avc stream (MP4 files) by decodebin
    1.22; RTSP depayloaders can give either."""

    def __init__(self, g: Any, decoders: tuple[str, ...]) -> None:
        self.factories = [f for f in (g.ElementFactory.find(n) for n in decoders) if f is not None]

    def attach(self, pipe: Any) -> None:
        if self.factories:
            pipe.iterate_recurse().foreach(self._connect)

    def _connect(self, el: Any) -> None:
        if el.find_property("expose-all-streams") is not None:  # decodebin, uridecodebin
            el.connect("autoplug-select", self._select)

    def _select(self, _bin: Any, _pad: Any, caps: Any, factory: Any) -> int:
        if factory in self.factories or "Decoder/Video" not in (factory.get_metadata("klass") or ""):
            return TRY
        # Only where the preferred one takes these very caps: skipping otherwise would leave no decoder.
        return SKIP if any(f.can_sink_any_caps(caps) for f in self.factories) else TRY


class GstCapture:
    def __init__(self, g: Any, pipe: Any, opts: SourceOptions) -> None:
        from gi.repository import GstVideo  # gst() loaded it; resolved once, used per frame

        self._g, self._pipe, self._opts, self._video = g, pipe, opts, GstVideo
        self._frames: queue.Queue[Frame] = queue.Queue(maxsize=2)
        self._cpu: dict[int, float] = {}  # streaming thread → its CPU time at its previous frame
        self._live: bool | None = None
        self.decoder = "gstreamer"
        pipe.connect("deep-element-added", lambda _b, _p, el: self._added(el))
        pipe.iterate_recurse().foreach(self._added)  # the decoders a user's pipeline names itself
        sink = pipe.get_by_name(SINK)
        sink.connect("new-sample", self._on_sample)

    @classmethod
    def open(cls, source: str, opts: SourceOptions) -> GstCapture | None:
        g = gst()
        try:
            pipe = g.parse_launch(pipeline_for(source, opts))
        except Exception as exc:  # GLib.Error: a pipeline that does not parse never will
            raise CaptureUnavailable(f"GStreamer pipeline {redact(source)!r}: {exc}") from exc
        src = pipe.get_by_name("src")
        if src is not None:
            _locate(src, source, opts.stall_s)
        Preferred(g, opts.hw_decoders).attach(pipe)
        cap = cls(g, pipe, opts)
        return cap if cap._start() else None

    def _start(self) -> bool:
        if self._pipe.set_state(self._g.State.PLAYING) == self._g.StateChangeReturn.FAILURE:
            self.release()
            return False
        first = self.read()
        if first is None:
            self.release()
            return False
        self._frames.put(first)
        return True

    def _added(self, el: Any) -> None:
        factory = el.get_factory()
        if factory is None or "Decoder/Video" not in (factory.get_metadata("klass") or ""):
            return
        self.decoder = factory.get_name()
        if self.decoder.startswith("avdec_") and self._opts.decode_threads:
            el.set_property("max-threads", self._opts.decode_threads)

    def _on_sample(self, sink: Any) -> Any:
        sample = sink.emit("pull-sample")
        try:
            frame = self._frame(sample)
        except (ValueError, TypeError) as exc:  # caps we cannot read: skip the frame, say why once
            log.warning("GStreamer frame skipped: %s", exc)
            return self._g.FlowReturn.OK
        if self._frames.full():
            self._frames.get_nowait()
        self._frames.put(frame)
        return self._g.FlowReturn.OK

    def _frame(self, sample: Any) -> Frame:
        info = self._video.VideoInfo.new_from_caps(sample.get_caps())
        buf = sample.get_buffer()
        ok, mapped = buf.map(self._g.MapFlags.READ)
        if not ok:
            raise ValueError("buffer not readable")
        try:
            rows = np.frombuffer(mapped.data, np.uint8, info.stride[0] * info.height).reshape(info.height, -1)
            image = rows[:, : info.width * 3].reshape(info.height, info.width, 3).copy()
        finally:
            buf.unmap(mapped)
        return Frame(image, self._when(buf.pts), self._spent())

    def _spent(self) -> float:
        tid, now = threading.get_ident(), time.thread_time()
        spent = now - self._cpu.get(tid, 0.0)  # a new thread: everything it did since it started
        self._cpu[tid] = now
        return spent

    def _when(self, pts: int) -> float:
        """The buffer's arrival on the monotonic clock for a live source; else now."""
        now = time.monotonic()
        if self._live is None:
            query = self._g.Query.new_latency()
            self._live = bool(self._pipe.query(query) and query.parse_latency()[0])
        if not self._live or pts == self._g.CLOCK_TIME_NONE:
            return now
        at = (self._pipe.get_base_time() + pts) / 1e9
        return at if 0.0 <= now - at < 10.0 else now  # another clock or a bad stamp: the receive time

    def read(self) -> Frame | None:
        deadline = time.monotonic() + self._opts.stall_s
        while time.monotonic() < deadline:
            try:
                return self._frames.get(timeout=0.1)
            except queue.Empty:
                pass
            if self._ended():
                return None
        return None

    def _ended(self) -> bool:
        g = self._g
        msg = self._pipe.get_bus().pop_filtered(g.MessageType.ERROR | g.MessageType.EOS)
        if msg is None:
            return False
        if msg.type == g.MessageType.ERROR:
            err, _debug = msg.parse_error()
            log.warning("GStreamer: %s", redact(err.message))  # the debug text can carry the URL's password
        return True

    def fps(self) -> float:
        return 0.0  # the caps' framerate is often 0/1 for RTSP; the camera measures what arrives

    def release(self) -> None:
        """Stop the pipeline; give up on it after RELEASE_S. GStreamer 1.22's rtspsrc can deadlock its own
        task against our stop when the server dies within a second of PLAY (seen here, about one time in
        two): the camera then opens a new pipeline and the stuck one's threads are left behind, said once."""
        stopped = threading.Event()

        def stop() -> None:
            self._pipe.set_state(self._g.State.NULL)
            stopped.set()

        threading.Thread(target=stop, name="gst-release", daemon=True).start()
        if not stopped.wait(RELEASE_S):
            log.warning("GStreamer pipeline did not stop in %.0f s (rtspsrc deadlock): left behind", RELEASE_S)
