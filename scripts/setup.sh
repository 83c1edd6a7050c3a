#!/usr/bin/env bash
# Idempotent setup, sized to the command: `setup.sh demo` installs what the demo needs (mosquitto, the venv
# with the agent and builder, the isolated TFLite toolchain, the media); `setup.sh test` (the default) adds
# what the tests start (NATS, nginx, GStreamer and its headers, libfaketime, debootstrap/nspawn, Chromium,
# promtool) and the dev, bench, GStreamer and API-client extras. Safe to re-run; each step skips when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PROFILE=${1:-test}
case "$PROFILE" in demo|test) ;; *) echo "setup.sh: profile must be demo or test, not '$PROFILE'" >&2; exit 2;; esac

# Brokers the tests start on free ports: mosquitto (every test) and nats-server (3.1.1 interop);
# libfaketime for the clock-jump test; debootstrap and systemd-nspawn for the boot test of the unit;
# nginx for bundle bytes over HTTP (the tests run their own, on a free loopback port); headless Chromium for
# the report chart's layout test.
missing=""
{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; } || missing="$missing mosquitto"
if [ "$PROFILE" = test ]; then
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
fi
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
hash=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
extras='agent,builder,media'
[ "$PROFILE" = test ] && extras='agent,builder,dev,bench,gstreamer,api-test'
# The test set includes the demo's: a venv set up for the tests serves the demo as it is.
if [ "$have" != "$hash-test" ] && [ "$have" != "$hash-$PROFILE" ]; then
  echo "setup: installing edgectl with the extras $extras" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e ".[$extras]" >&2
  echo "$hash-$PROFILE" > "$stamp"
fi

.venv/bin/edgectl toolchain install tflite >&2
.venv/bin/python scripts/make_media.py >/dev/null
