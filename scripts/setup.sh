#!/usr/bin/env bash
# Idempotent setup shared by the demo and the tests: mosquitto, the venv with every extra, the
# isolated TFLite toolchain, and the media cache. Safe to re-run; each step skips when done.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing mosquitto (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null
  else
    echo "setup: mosquitto is missing and cannot be installed here (not root or no apt-get)" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.edgectl-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing edgectl with its agent, builder and dev extras" >&2
  .venv/bin/python -m pip install -q --upgrade pip >&2
  .venv/bin/python -m pip install -q -e '.[agent,builder,dev]' >&2
  echo "$want" > "$stamp"
fi

.venv/bin/edgectl toolchain install tflite >&2
.venv/bin/python scripts/make_media.py >/dev/null
