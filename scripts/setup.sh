#!/usr/bin/env bash
# Idempotent setup shared by the demo and the tests: mosquitto, the venv with every extra, the
# isolated TFLite toolchain, and the media cache. Safe to re-run; each step skips when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Brokers the tests start on free ports: mosquitto (every test) and nats-server (3.1.1 interop);
# libfaketime for the clock-jump test; debootstrap and systemd-nspawn for the boot test of the unit;
# nginx for bundle bytes over HTTP (the tests run their own, on a free loopback port); headless Chromium for
# the report chart's layout test.
missing=""
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="$missing mosquitto"
command -v nats-server >/dev/null 2>&1 || missing="$missing nats-server"
ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$missing faketime"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
command -v systemd-nspawn >/dev/null 2>&1 || missing="$missing systemd-container"
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
# promtool (Debian's prometheus package) lints what /metrics and `edgectl metrics` serve.
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
# A real browser for the build report's chart test (its layout measured with the browser's own metrics).
command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 || \
  missing="$missing chromium-headless-shell fonts-dejavu-core"
# GStreamer for the camera tests: the RTSP server (gst-rtsp-server), H.264/H.265 encoders and decoders, and
# what PyGObject builds against.
command -v gst-launch-1.0 >/dev/null 2>&1 || missing="$missing gstreamer1.0-tools"
for pkg in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
           gstreamer1.0-libav gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 \
           libgirepository1.0-dev libcairo2-dev pkg-config; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
"$PY" -c 'import os, sysconfig; os.stat(sysconfig.get_paths()["include"] + "/Python.h")' 2>/dev/null || \
  missing="$missing python3-dev"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing$missing (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "setup: missing$missing and cannot install here (not root or no apt-get)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.edgectl-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing edgectl with its agent (and API), builder, dev, bench, gstreamer and api-test extras" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e '.[agent,builder,dev,bench,gstreamer,api-test]' >&2
  echo "$want" > "$stamp"
fi

.venv/bin/edgectl toolchain install tflite >&2
.venv/bin/python scripts/make_media.py >/dev/null
