"""`edge-agent`: the device daemon and its tools."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="edge-agent: run a vision model on this device, fast and unattended.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """edge-agent commands."""


@app.command()
def probe(as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False) -> None:
    """Probe the CPU, memory, installed runtimes and accelerators."""
    from .inference.probe import probe as run_probe

    result = run_probe()
    if as_json:
        sys.stdout.write(json.dumps(result.as_dict(), indent=2) + "\n")
        return
    cpu = result.cpu
    typer.echo(f"{result.arch}  {result.os}  {cpu.model}  {cpu.cores} cores  {result.memory_mb} MB")
    typer.echo(f"cpu flags: {' '.join(cpu.flags) or '-'}")
    for name, info in result.runtimes.items():
        detail = info.unavailable or f"{info.version}  devices: {', '.join(info.devices)}"
        typer.echo(f"  {name:12} {'✓' if info.available else '-'} {detail}")
    typer.echo(f"accelerators: {', '.join(result.accelerators) or 'none'}")
    d = result.decode
    typer.echo(f"decode: OpenCV FFmpeg {'✓' if d.opencv_ffmpeg else '-'}  {d.gstreamer or 'no GStreamer'}  "
               f"hardware: {', '.join(d.hardware) or 'none'}  software: {', '.join(d.software) or 'none'}")
    for note in result.notes:
        typer.echo(f"note: {note}")


DEFAULT_STATE = Path("/var/lib/edge-agent")


def _trusted(paths: list[Path]) -> list[bytes] | None:
    return [p.read_bytes() for p in paths] if paths else None


@app.command()
def select(
    bundle: Annotated[Path, typer.Argument(help="Bundle directory.")],
    budget: Annotated[float, typer.Option(help="Benchmark time budget, seconds.")] = 8.0,
    source: Annotated[Path | None, typer.Option(help="Benchmark the whole pipeline on this video.")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Where the decision is cached.")] = None,
    reselect: Annotated[bool, typer.Option(help="Ignore a cached decision.")] = False,
    under_load: Annotated[bool, typer.Option(
        help="Measure under the device's current load, at half duty (also fewer threads; no re-run when "
             "noisy): what the serving agent does when its latency drifts.")] = False,
    trusted_key: Annotated[list[Path] | None, typer.Option(help="PEM public key the bundle must be signed by.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Golden-check every candidate on this device, benchmark the survivors, print the ranked table."""
    from runtimes.bundle import open_bundle
    from runtimes.errors import RuntimesError

    from .errors import AgentError
    from .inference.probe import probe as run_probe
    from .inference.selection import select as run_select
    from .inference.selection import select_cached

    try:
        b = open_bundle(bundle, trusted_keys=_trusted(trusted_key or []))
        hw = run_probe()
        sel = (select_cached(b, hw, state_dir, budget, source, force=reselect, under_load=under_load) if state_dir
               else run_select(b, hw, budget, source, under_load=under_load))
    except (AgentError, RuntimesError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(sel.as_dict(), indent=2) + "\n")
        return
    _print_selection(sel)


def _print_selection(sel: object) -> None:
    from .inference.selection import Selection

    if not isinstance(sel, Selection):
        return
    typer.echo(f"{'':2}{'target':14} {'runtime':12} {'settings':34} {'median':>8} {'p90':>8}  status")
    for c in sel.candidates:
        mark = "★" if c is sel.selected else "↺" if c is sel.runner_up else " "
        settings = ",".join(f"{k}={v}" for k, v in c.settings.items())
        med = f"{c.median_ms:8.2f}" if c.median_ms else f"{'-':>8}"
        p90 = f"{c.p90_ms:8.2f}" if c.p90_ms else f"{'-':>8}"
        typer.echo(f"{mark} {c.target:14} {c.runtime:12} {settings:34} {med} {p90}  {c.reason or c.status}")
    extra = " (cached)" if sel.cached else ""
    typer.echo(f"selected {sel.selected.key} in {sel.seconds:.1f} s{extra}; ★ selected, ↺ runner-up"
               + ("; run was noisy" if sel.noisy else ""))


config_app = typer.Typer(help="Check agent configuration files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


def _flags(device_id: str | None, broker: list[str], bundle: Path | None, source: list[str],
           state_dir: Path | None, trusted_key: list[Path], allow_unsigned: bool | None,
           telemetry_interval: float | None, realtime: bool | None, infer_fps: float | None = None
           ) -> dict[str, object]:
    flags: dict[str, object] = {}
    for key, value in (("device_id", device_id), ("bundle", bundle), ("state_dir", state_dir),
                       ("allow_unsigned", allow_unsigned), ("telemetry_interval_s", telemetry_interval)):
        if value is not None:
            flags[key] = value
    if broker:
        from fleet.mqtt import split_urls

        flags["broker"] = {"urls": split_urls(broker)}
    if trusted_key:
        flags["trusted_keys"] = trusted_key
    if source:
        each = {**({"realtime": realtime} if realtime is not None else {}),
                **({"infer_fps": infer_fps} if infer_fps is not None else {})}
        flags["cameras"] = [{"id": f"cam{i}", "source": s, **each} for i, s in enumerate(source)]
    return flags


@app.command()
def run(
    config: Annotated[Path | None, typer.Option(help="TOML or YAML config file.")] = None,
    device_id: Annotated[str | None, typer.Option(help="Device id (default: hostname).")] = None,
    broker: Annotated[list[str] | None, typer.Option(help="mqtt://HOST:PORT or mqtts://HOST:PORT; repeat it "
                                                     "(or separate with commas) for failover nodes.")] = None,
    bundle: Annotated[Path | None, typer.Option(help="Serve this bundle directory.")] = None,
    source: Annotated[list[str] | None, typer.Option(help="Camera: index, /dev/videoN, rtsp://…, file.")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="Model store, outbox and caches.")] = None,
    trusted_key: Annotated[list[Path] | None, typer.Option(help="PEM public key bundles must be signed by.")] = None,
    allow_unsigned: Annotated[bool | None, typer.Option(help="Accept unsigned bundles.")] = None,
    telemetry_interval: Annotated[float | None, typer.Option(help="Seconds between telemetry messages.")] = None,
    realtime: Annotated[bool | None, typer.Option(help="Play files at their frame rate (default) or flat out.")]
    = None,
    ha_discovery: Annotated[bool | None, typer.Option(help="Publish Home Assistant MQTT discovery configs.")]
    = None,
    infer_fps: Annotated[float | None, typer.Option(help="Answers per second per --source camera (default: as "
                                                    "fast as the model goes).")] = None,
    api_listen: Annotated[str | None, typer.Option(help="HOST:PORT of the inference API over HTTP (KServe v2, "
                                                   "TF Serving REST, DeepStack); loopback unless secured.")] = None,
    api_grpc_listen: Annotated[str | None, typer.Option(help="HOST:PORT of the KServe v2 gRPC API.")] = None,
) -> None:
    """Run the agent: serve the model on the cameras and report over MQTT. Flags override the config file."""
    import signal

    from . import config as config_mod
    from . import wiring
    from .errors import AgentError

    flags = _flags(device_id, broker or [], bundle, source or [], state_dir, trusted_key or [], allow_unsigned,
                   telemetry_interval, realtime, infer_fps)
    if ha_discovery is not None:
        flags["homeassistant"] = {"enabled": ha_discovery}
    api = {k: v for k, v in (("listen", api_listen), ("grpc_listen", api_grpc_listen)) if v}
    if api:
        flags["api"] = api
    # Block SIGTERM/SIGINT before any thread exists, so every thread (the runtimes' native workers too)
    # inherits the mask and one thread takes them synchronously with sigwait (Agent._watch_signals). An asynchronous
    # handler can land on a native worker thread; we saw that crash the process with SIGSEGV.
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        cfg = config_mod.load(config, flags)
        agent = wiring.build(cfg, stop_signals={signal.SIGTERM, signal.SIGINT})
    except AgentError as exc:
        # The caller (a shell, or a test calling this in-process) gets its mask back: processes it starts
        # later would inherit the blocked signals and could not be stopped.
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Fallback for a thread that unblocked the signals itself: the handler only sets the stop event.
        signal.signal(sig, lambda *_: agent.stop_event.set())
    code = agent.run()
    # Everything durable is closed by now. Native runtimes (LiteRT, OpenVINO) can crash in their static
    # destructors at interpreter teardown, turning a clean stop into SIGSEGV for systemd: skip teardown.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@config_app.command("check")
def config_check(path: Annotated[Path, typer.Argument(help="Config file.")]) -> None:
    """Validate a config file; a bad key is named with its path."""
    from . import config as config_mod
    from .errors import AgentError

    try:
        cfg = config_mod.load(path, environ={})
    except AgentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    brokers = ", ".join(cfg.broker.all_urls())
    typer.echo(f"{path}: ok (device {cfg.device_id}, {len(cfg.cameras)} camera(s), broker {brokers})")


@app.command()
def install(
    root: Annotated[Path, typer.Option(help="Install under this root (packaging, tests).")] = Path("/"),
    exec_path: Annotated[str | None, typer.Option("--exec", help="edge-agent executable for ExecStart.")] = None,
) -> None:
    """Write the systemd unit, a config template and the state layout."""
    from .install import install as do_install

    for path in do_install(root, exec_path):
        typer.echo(f"wrote {path}")
    if root == Path("/"):
        typer.echo("next: edit /etc/edge-agent/agent.toml, then systemctl daemon-reload && "
                   "systemctl enable --now edge-agent")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    app()
