#!/usr/bin/env bash
# The main job: set up; build a signed bundle from the real EfficientNet-Lite0; start a broker and an agent
# on the demo video; show `edgectl status`; build v2 and push it; show the device on v2.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
export EDGECTL_HOME=${EDGECTL_HOME:-$PWD/.cache/demo-home}
M=.cache/media
OUT=out
mkdir -p "$OUT"
BIN=.venv/bin

echo "== 1. edgectl build: all six targets (onnx2tf takes about a minute) ==" >&2
$BIN/edgectl build assets/models/efficientnet_lite0.onnx --calib "$M/calib" --val "$M/val" \
  --name efficientnet-lite0 --version 1 --out "$OUT/demo-bundle" --force --json > "$OUT/build.json"
$BIN/python scripts/show_report.py "$OUT/demo-bundle"
$BIN/edgectl keys export > "$OUT/trusted.pem"

echo "== 2. broker ==" >&2
PORT=$($BIN/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BROKER=mqtt://127.0.0.1:$PORT
STATE=.cache/demo-state
rm -rf "$STATE" && mkdir -p "$STATE/mosquitto"
MOSQ=$(command -v mosquitto || echo /usr/sbin/mosquitto)
printf 'listener %s 127.0.0.1\nallow_anonymous true\nuser %s\n' "$PORT" "$(id -un)" > "$STATE/mosquitto/conf"
"$MOSQ" -c "$STATE/mosquitto/conf" > "$STATE/mosquitto/log" 2>&1 &
BROKER_PID=$!
trap 'kill $AGENT_PID $BROKER_PID 2>/dev/null || true' EXIT
AGENT_PID=
echo "broker: the system mosquitto ($MOSQ) on $BROKER, private to this demo" >&2

echo "== 3. edge-agent run on the 640x480 demo video (selection measures every candidate first) ==" >&2
$BIN/edge-agent run --device-id demo-cam --broker "$BROKER" --bundle "$OUT/demo-bundle" \
  --source "$M/video_640x480.mp4" --state-dir "$STATE/agent" --trusted-key "$OUT/trusted.pem" \
  --telemetry-interval 2 > "$STATE/agent.log" 2>&1 &
AGENT_PID=$!
for _ in $(seq 90); do   # until the device reports online with a model
  $BIN/edgectl status --broker "$BROKER" --json 2>/dev/null | grep -q '"model": "efficientnet' && break
  sleep 1
done
sleep 4   # a couple of telemetry rounds, so fps and p95 are filled in
# Exit 1 means some device this laptop knows is not online (one met on another broker, say): shown, not fatal.
$BIN/edgectl status --broker "$BROKER" || true

echo "== 4. edgectl build v2 (ONNX and OpenVINO targets) and edgectl push ==" >&2
$BIN/edgectl build assets/models/efficientnet_lite0.onnx --calib "$M/calib" --val "$M/val" \
  --targets onnx-fp32,onnx-int8,openvino-int8 --version 2 --out "$OUT/demo-bundle-v2" --force > /dev/null
$BIN/edgectl push "$OUT/demo-bundle-v2" --device demo-cam --broker "$BROKER" --timeout 180
sleep 3
$BIN/edgectl status --broker "$BROKER" || true
echo "agent log: $STATE/agent.log; report: $OUT/demo-bundle/report.html" >&2
