"""A real RTSP server (GStreamer's gst-rtsp-server through PyGObject) for tests and benches, run as its own
process so a test can kill it, restart it on the same port or stop it without closing its sockets (SIGSTOP).

    python tests/support/rtsp_server.py PORT MOUNT=FILE [MOUNT=FILE …] [--user U --password P]

Each FILE is a Matroska or MPEG-TS file of H.264 or H.265 (see tests/support/rtsp.py): served without
re-encoding, paced by its own timestamps, from its start for every client. Prints "ready" once listening.
"""

from __future__ import annotations

import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

DEMUX = {".mkv": "matroskademux", ".ts": "tsdemux"}


def launch(path: str) -> str:
    codec = "h265" if "h265" in path.rsplit("/", 1)[-1] else "h264"
    demux = DEMUX[path[path.rfind("."):]]
    return (f"( filesrc location={path} ! {demux} ! {codec}parse config-interval=-1 ! "
            f"rtp{codec}pay name=pay0 pt=96 config-interval=-1 )")


def auth(user: str, password: str) -> GstRtspServer.RTSPAuth:
    a = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    a.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    return a


def serve(port: int, mounts: dict[str, str], user: str | None, password: str | None) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    if user and password:
        server.set_auth(auth(user, password))
    for mount, path in mounts.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch(path))
        factory.set_shared(False)  # every client (camera) its own stream from the start of the file
        if user:
            role = "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            factory.add_role_from_structure(Gst.Structure.from_string(role)[0])
        server.get_mount_points().add_factory("/" + mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp server: cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("mounts", nargs="+")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()
    serve(args.port, dict(m.split("=", 1) for m in args.mounts), args.user, args.password)


if __name__ == "__main__":
    main()
