"""The last step of scripts/arm64-check.sh: run the emulated agent against the private broker until it has
published results (or the time is up), then print one JSON object with probe, select and run."""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.mqtt import Recorder


def _run(cmd: list[str], port: int, seconds: float) -> dict[str, object]:
    rec = Recorder(port, ["edge/arm64/#"], client_id="arm64-check")
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first: float | None = None
    try:
        while time.monotonic() - start < seconds and proc.poll() is None:
            results = rec.of("/results")
            if results and first is None:
                first = round(time.monotonic() - start, 1)
            if len(results) >= 5:
                break
            time.sleep(1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
        rec.close()
    status = [d for d in rec.of("/status") if d.get("runtime")]
    results = rec.of("/results")
    return {"first_result_s": first, "results": len(results), "sample": results[0].get("top") if results else None,
            "status": status[-1] if status else None, "exit": proc.returncode, "stderr_tail": err[-800:]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=float, default=240)
    p.add_argument("--probe", type=Path, required=True)
    p.add_argument("--select", type=Path, required=True)
    p.add_argument("--select-seconds", type=float, default=0)
    p.add_argument("cmd", nargs="+")
    args = p.parse_args()
    probe = json.loads(args.probe.read_text())
    sel = json.loads(args.select.read_text()) if args.select.stat().st_size else {}
    why = [{k: c.get(k) for k in ("target", "runtime", "settings", "status", "reason", "median_ms")}
           for c in sel.get("candidates", [])]
    print(json.dumps({
        "check": "arm64", "host": platform.machine(), "emulated": "qemu-user, QEMU_CPU=cortex-a72, Debian 12 arm64",
        "probe": {"arch": probe.get("arch"), "cpu": probe.get("cpu"), "runtimes": probe.get("runtimes")},
        "select": {"selected": sel.get("selected"), "seconds": args.select_seconds, "candidates": why},
        "run": _run(args.cmd, args.port, args.seconds),
        "date": time.strftime("%Y-%m-%d"),
    }, indent=2))


if __name__ == "__main__":
    main()
