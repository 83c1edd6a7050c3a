"""RTSP cameras for tests and benches: the repo's videos encoded once to H.264/H.265 (cached next to the
media), and a real RTSP server process on a free loopback port (tests/support/rtsp_server.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from tests.support.broker import free_port

SERVER = Path(__file__).with_name("rtsp_server.py")
ENCODER = {"h264": "x264enc speed-preset=ultrafast tune=zerolatency key-int-max={gop} bframes=0",
           "h265": "x265enc speed-preset=ultrafast tune=zerolatency key-int-max={gop}"}


def gst_available() -> str | None:
    """Why GStreamer's RTSP server cannot run here, or None when it can. Asked in a child process: the test
    process itself never loads GStreamer (its plugins' libraries beside the runtimes' are not what we test)."""
    check = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "print(' '.join(e for e in ('x264enc', 'x265enc', 'avdec_h264', 'rtspsrc') "
             "if Gst.ElementFactory.find(e) is None))")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return f"PyGObject with GStreamer's RTSP server is not installed ({last}): run scripts/setup.sh"
    return f"GStreamer elements missing: {proc.stdout.strip()}" if proc.stdout.strip() else None


def isolated(fn: Callable[..., None], *args: object) -> None:
    """fn(*args) in a fresh process (its exceptions raised here): GStreamer's plugins and their libraries
    never load into the test process, which builds bundles with OpenVINO and NNCF beside them (we saw the
    two crash together in one process)."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(fn, args)


def frames(video: Path, size: tuple[int, int], seconds: float, fps: int) -> Iterator[np.ndarray]:
    """The video's frames resized, looped until `seconds` of them at `fps`."""
    cap = cv2.VideoCapture(str(video))
    clip = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        clip.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    cap.release()
    if not clip:
        raise RuntimeError(f"{video}: no frames")
    for i in range(int(seconds * fps)):
        yield clip[i % len(clip)]


def encode(out: Path, parts: list[tuple[Path, tuple[int, int], float]], codec: str, fps: int = 15) -> Path:
    """Encode (video, size, seconds) parts in one stream (a size change mid-stream is a new SPS) to `out`."""
    if not out.exists():
        isolated(_encode, out, parts, codec, fps)  # GStreamer in a child, as everywhere in the tests
    return out


def _encode(out: Path, parts: list[tuple[Path, tuple[int, int], float]], codec: str, fps: int) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    from gi.repository import Gst

    Gst.init(None)
    mux = "matroskamux" if out.suffix == ".mkv" else "mpegtsmux"
    pipe = Gst.parse_launch(f"appsrc name=src format=time is-live=false block=true ! videoconvert ! "
                            f"video/x-raw,format=I420 ! {ENCODER[codec].format(gop=fps)} ! {codec}parse ! {mux} ! "
                            f"filesink location={out}.part")
    src = pipe.get_by_name("src")
    pipe.set_state(Gst.State.PLAYING)
    n = 0
    for video, size, seconds in parts:
        src.set_property("caps", Gst.Caps.from_string(
            f"video/x-raw,format=BGR,width={size[0]},height={size[1]},framerate={fps}/1"))
        for frame in frames(video, size, seconds, fps):
            buf = Gst.Buffer.new_wrapped(frame.tobytes())
            buf.pts, buf.duration = n * Gst.SECOND // fps, Gst.SECOND // fps
            src.emit("push-buffer", buf)
            n += 1
    src.emit("end-of-stream")
    pipe.get_bus().timed_pop_filtered(120 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
    pipe.set_state(Gst.State.NULL)
    os.replace(f"{out}.part", out)


def stream(media: Path, name: str, size: tuple[int, int], codec: str = "h264", seconds: float = 120) -> Path:
    """The cached encode of media/NAME.mp4 at `size`."""
    out = media / "rtsp" / f"{name}_{size[0]}x{size[1]}_{int(seconds)}s_{codec}.mkv"
    out.parent.mkdir(exist_ok=True)
    return encode(out, [(media / f"{name}.mp4", size, seconds)], codec)


class RtspServer:
    """gst-rtsp-server in its own process: kill, restart on the same port, stall (SIGSTOP) and resume."""

    def __init__(self, mounts: dict[str, Path], user: str | None = None, password: str | None = None,
                 log: Path | None = None) -> None:
        self.mounts, self.user, self.password, self.log = mounts, user, password, log
        self.port = free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.start()

    def url(self, mount: str, credentials: bool = True) -> str:
        auth = f"{self.user}:{self.password}@" if credentials and self.user else ""
        return f"rtsp://{auth}127.0.0.1:{self.port}/{mount}"

    def start(self) -> None:
        cmd = [sys.executable, str(SERVER), str(self.port), *(f"{m}={p}" for m, p in self.mounts.items())]
        if self.user:
            cmd += ["--user", self.user, "--password", self.password or ""]
        err = self.log.open("a") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if line.strip() != "ready":
            self.kill()
            raise RuntimeError(f"rtsp server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)

    def stall(self) -> None:
        """Stop sending without closing a socket."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)

    def __enter__(self) -> RtspServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.kill()
