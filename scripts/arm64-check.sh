#!/usr/bin/env bash
# The agent on an emulated arm64 Debian 12 (docs/agent.md "Devices"): install from this checkout with PyPI's aarch64
# wheels, `edge-agent probe`, `edge-agent select` on the demo bundle, and a short `edge-agent run` against a
# private mosquitto on loopback. Prints one JSON object (bench/results-arm64.json keeps the last one).
#
# Too slow for CI (inference runs ~150x slower under qemu-user): a nightly command, run as root:
#     bash scripts/arm64-check.sh > bench/results-arm64.json
# The rig (debootstrap'd arm64 root and its venv) is cached in $ARM64_RIG (~/.cache/edgectl/arm64-rig) and
# rebuilt only when pyproject.toml changes; the first run takes 15-25 minutes, later ones about 10.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RIG=${ARM64_RIG:-$HOME/.cache/edgectl/arm64-rig}
BUDGET=${ARM64_SELECT_BUDGET:-60}
RUN_S=${ARM64_RUN_S:-240}
log() { echo "arm64-check: $*" >&2; }

[ "$(id -u)" = 0 ] || { echo "arm64-check: run as root (debootstrap, chroot, binfmt)" >&2; exit 2; }
bash scripts/setup.sh demo >/dev/null   # the host side: venv, mosquitto, media, the demo bundle's builder

# -- qemu-user for aarch64 binaries --------------------------------------------------------------------------
if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v update-binfmts >/dev/null 2>&1; then
  log "installing qemu-user-static binfmt-support (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true

# -- the arm64 root, once ---------------------------------------------------------------------------------
if [ ! -x "$RIG/root/usr/bin/python3" ]; then
  log "debootstrap arm64 bookworm into $RIG/root (several minutes under emulation)"
  rm -rf "$RIG/root" && mkdir -p "$RIG"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$RIG/root" http://deb.debian.org/debian >"$RIG/debootstrap.log" 2>&1
fi
R=$RIG/root
cp /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
# ONNX Runtime and LiteRT read /proc/cpuinfo and crash on an x86 one under qemu: an ARM (Pi 4) one instead.
: > "$RIG/cpuinfo"
for cpu in 0 1; do
  printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$cpu" >> "$RIG/cpuinfo"
done
cat >> "$RIG/cpuinfo" <<'EOF'
Hardware	: BCM2835
Model		: Raspberry Pi 4 Model B Rev 1.4
EOF
cleanup() {
  for m in proc/cpuinfo proc sys dev; do umount "$R/$m" 2>/dev/null || true; done
  [ -n "${BROKER_PID:-}" ] && kill "$BROKER_PID" 2>/dev/null || true
}
trap cleanup EXIT
mount --bind /proc "$R/proc" && mount --bind "$RIG/cpuinfo" "$R/proc/cpuinfo"
mount --bind /sys "$R/sys" && mount --bind /dev "$R/dev"
in_rig() { QEMU_CPU=cortex-a72 PIP_CERT=/etc/ssl/certs/ca-certificates.crt HOME=/root chroot "$R" "$@"; }

# -- the agent from this checkout, with PyPI's aarch64 wheels ------------------------------------------------
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
rm -rf "$R/opt/edgectl" && mkdir -p "$R/opt/edgectl"
git -C "$ROOT" ls-files -z | grep -zv '^assets/' | (cd "$ROOT" && xargs -0 cp --parents -t "$R/opt/edgectl")
if [ "$(cat "$R/opt/venv.stamp" 2>/dev/null)" != "$want" ]; then
  log "installing the agent into the arm64 venv (aarch64 wheels from PyPI)"
  in_rig python3 -m venv /opt/venv
  in_rig /opt/venv/bin/pip install -q --disable-pip-version-check '/opt/edgectl[agent]' >"$RIG/pip.log" 2>&1
  echo "$want" > "$R/opt/venv.stamp"
else
  in_rig /opt/venv/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall /opt/edgectl \
    >"$RIG/pip.log" 2>&1
fi

# -- the demo bundle (built on the host: converters never go to a device) -----------------------------------
export EDGECTL_HOME=${EDGECTL_HOME:-$ROOT/.cache/demo-home}
BUNDLE=$ROOT/out/demo-bundle
if [ ! -f "$BUNDLE/manifest.json" ]; then
  log "building the demo bundle on the host"
  .venv/bin/edgectl build assets/models/efficientnet_lite0.onnx --calib .cache/media/calib --val .cache/media/val \
    --name efficientnet-lite0 --version 1 --out "$BUNDLE" --force >/dev/null 2>"$RIG/build.log"
fi
rm -rf "$R/opt/work" && mkdir -p "$R/opt/work"
cp -r "$BUNDLE" "$R/opt/work/bundle"
.venv/bin/edgectl keys export > "$R/opt/work/trusted.pem"
cp .cache/media/video_640x480.mp4 "$R/opt/work/video.mp4"

log "edge-agent probe"
in_rig /opt/venv/bin/edge-agent probe --json > "$RIG/probe.json" 2>"$RIG/probe.log"
log "edge-agent select (budget ${BUDGET} s; golden checks run ~150x slower under emulation)"
select_start=$(date +%s)
# With the run's --source: the decision is cached per mode, and the run then serves it instead of a fast start.
in_rig /opt/venv/bin/edge-agent select /opt/work/bundle --budget "$BUDGET" --trusted-key /opt/work/trusted.pem \
  --state-dir /opt/work/state --source /opt/work/video.mp4 --json > "$RIG/select.json" 2>"$RIG/select.log"
select_s=$(( $(date +%s) - select_start ))

log "edge-agent run for up to ${RUN_S} s against a private mosquitto"
PORT=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$RIG/mosquitto"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\n' "$PORT" "$(id -un)" > "$RIG/mosquitto/conf"
"$(command -v mosquitto || echo /usr/sbin/mosquitto)" -c "$RIG/mosquitto/conf" >"$RIG/mosquitto/log" 2>&1 &
BROKER_PID=$!
.venv/bin/python scripts/arm64_report.py --port "$PORT" --seconds "$RUN_S" --probe "$RIG/probe.json" \
  --select "$RIG/select.json" --select-seconds "$select_s" -- \
  env QEMU_CPU=cortex-a72 HOME=/root EDGE_AGENT__THRESHOLDS__STUCK_TIMEOUT_S=120 \
  chroot "$R" /opt/venv/bin/edge-agent run --device-id arm64 \
  --broker "mqtt://127.0.0.1:$PORT" --bundle /opt/work/bundle --source /opt/work/video.mp4 \
  --state-dir /opt/work/state --trusted-key /opt/work/trusted.pem --telemetry-interval 5
