"""`edgectl`: build bundles, manage keys and toolchains, and (from the fleet issue) status and push.

Every `--json` prints exactly one JSON document on stdout; logs and progress go to stderr.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from runtimes.errors import RuntimesError

from . import keys as keys_mod
from . import toolchain as toolchain_mod
from .errors import FleetError

app = typer.Typer(help="edgectl: put a vision model on a fleet of edge devices.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
keys_app = typer.Typer(help="The Ed25519 key pair that signs bundles.", no_args_is_help=True)
toolchain_app = typer.Typer(help="Isolated converter environments (explicit installs only).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(toolchain_app, name="toolchain")
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Converters (NNCF, ONNX Runtime, TensorFlow) print to stdout, some from C: move fd 1 to stderr so
    stdout carries only our one JSON document."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real fd 1 (embedded use): nothing to protect
        yield
        return
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def setup_logging() -> None:
    debug = os.environ.get("EDGECTL_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for ours in ("builder", "runtimes"):
        logging.getLogger(ours).setLevel(logging.DEBUG if debug else logging.INFO)


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")


@keys_app.command("init")
def keys_init(force: Annotated[bool, typer.Option(help="Replace an existing key.")] = False) -> None:
    """Create the signing key pair."""
    try:
        key = keys_mod.init(force=force)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    err.print(f"created key {key.key_id} at {key.path}")


@keys_app.command("list")
def keys_list() -> None:
    """Show the signing key's id and where it lives."""
    try:
        key = keys_mod.load()
    except FleetError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"{key.key_id}  {key.path}")


@keys_app.command("export")
def keys_export() -> None:
    """Print the public key (PEM) that devices trust."""
    try:
        key = keys_mod.load()
    except FleetError as exc:
        raise fail(str(exc)) from exc
    sys.stdout.write(key.public_pem.decode())


@toolchain_app.command("install")
def toolchain_install(name: Annotated[str, typer.Argument(help="Toolchain name, e.g. tflite.")]) -> None:
    """Create an isolated converter environment (a few minutes, about 2 GB for tflite)."""
    try:
        chain = toolchain_mod.lookup(name)
        with err.status(f"installing toolchain {name}: {', '.join(chain.packages)}") as status:
            where = toolchain_mod.install(name, lambda line: status.update(f"{name}: {line[:100]}"))
    except FleetError as exc:
        raise fail(str(exc)) from exc
    err.print(f"toolchain {name} ready at {where}")


@toolchain_app.command("status")
def toolchain_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which toolchains are installed."""
    rows = {n: {"installed": toolchain_mod.stamp(n) is not None, "path": str(toolchain_mod.env_dir(n)),
                "packages": list(t.packages)} for n, t in toolchain_mod.TOOLCHAINS.items()}
    if as_json:
        emit_json(rows)
        return
    for name, row in rows.items():
        typer.echo(f"{name:8} {'installed' if row['installed'] else 'missing':9} {row['path']}")


@app.command()
def build(
    model: Annotated[Path, typer.Argument(help="ONNX, SavedModel dir, Keras, .tflite or PyTorch .pt2.")],
    calib: Annotated[Path, typer.Option(help="Folder of images or a video for INT8 calibration.")],
    out: Annotated[Path, typer.Option(help="Output bundle directory.")],
    val: Annotated[Path | None, typer.Option(help="Validation images (default: split from --calib).")] = None,
    targets: Annotated[str, typer.Option(help="Comma-separated targets, or 'all'.")] = "all",
    name: Annotated[str | None, typer.Option(help="Model name (default: file stem).")] = None,
    version: Annotated[int, typer.Option(help="Monotonic model version.")] = 1,
    labels: Annotated[Path | None, typer.Option(help="Labels file, one per line.")] = None,
    task: Annotated[str | None, typer.Option(help="classify (default), detect, segment or raw.")] = None,
    preprocess: Annotated[str | None, typer.Option(help="JSON or file: how frames become the input "
                                                        "(docs/build.md).")] = None,
    postprocess: Annotated[str | None, typer.Option(help="JSON or file: the task's spec, e.g. a detection "
                                                         "format (docs/build.md).")] = None,
    input_name: Annotated[str | None, typer.Option("--input", help="Input tensor, when there are several.")] = None,
    input_shape: Annotated[list[str] | None, typer.Option(help="NAME=D0,D1,… fixes dynamic dimensions "
                                                          "(repeatable; -1 keeps the batch dynamic).")] = None,
    min_top1: Annotated[float | None, typer.Option(help="Classifiers: minimum INT8 top-1 agreement where FP32 "
                                                   "is confident (default 0.90).")] = None,
    min_top5: Annotated[float | None, typer.Option(help="Classifiers: minimum INT8 reference-in-top-5 "
                                                   "(default 0.98).")] = None,
    min_top1_fp16: Annotated[float | None, typer.Option(help="Classifiers: minimum FP16 top-1 agreement "
                                                        "(default 0.97).")] = None,
    min_agreement: Annotated[float | None, typer.Option(help="Any task: minimum of its first measure for INT8 "
                                                        "artifacts (docs/build.md).")] = None,
    min_agreement_fp16: Annotated[float | None, typer.Option(help="Any task: the same for FP16.")] = None,
    recovery_budget: Annotated[float, typer.Option(help="Seconds an INT8 target below its gate may spend "
                                                   "keeping its most sensitive layers in float (0: off).")] = 240.0,
    strict: Annotated[bool, typer.Option(help="Fail the build when any target fails or is rejected.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty --out.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Build a signed bundle of per-target artifacts from one model."""
    from builder import api  # lazy: a device never installs the builder's converters
    from builder.errors import BuilderError, BuildFailed

    request = api.BuildRequest(
        model=model, calib=calib, val=val, out=out, targets=targets, name=name, version=version, labels=labels,
        task=task, preprocess=preprocess, postprocess=postprocess, input_name=input_name,
        input_shapes=input_shape or [], min_top1=min_top1, min_top5=min_top5, min_top1_fp16=min_top1_fp16,
        min_agreement=min_agreement, min_agreement_fp16=min_agreement_fp16, recovery_budget_s=recovery_budget,
        strict=strict, force=force)
    try:
        with stdout_to_stderr():
            summary = api.build(request, console=err)
    except BuildFailed as exc:
        if as_json:
            emit_json(exc.summary)
        raise fail(str(exc), code=1) from exc
    except (BuilderError, FleetError, RuntimesError) as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # a model that breaks a converter in a way we have not met: still one line
        logging.getLogger("builder").debug("unexpected failure", exc_info=True)
        raise fail(f"{model}: the build failed unexpectedly: {type(exc).__name__}: {_first_line(exc)} "
                   "(EDGECTL_DEBUG=1 shows the traceback)") from exc
    if as_json:
        emit_json(summary)
    if strict and any(t["status"] != "ok" for t in summary["targets"]):
        raise typer.Exit(1)


ca_app = typer.Typer(help="A CA for per-device TLS identities (see docs/security.md).", no_args_is_help=True)
app.add_typer(ca_app, name="ca")


@ca_app.command("init")
def ca_init(force: Annotated[bool, typer.Option(help="Replace an existing CA.")] = False) -> None:
    """Create the fleet CA (ECDSA P-256)."""
    from . import ca

    try:
        err.print(f"CA certificate: {ca.init(force=force)}")
    except FleetError as exc:
        raise fail(str(exc)) from exc


@ca_app.command("issue")
def ca_issue(name: Annotated[str, typer.Argument(help="Device id (becomes the MQTT username) or operator name.")],
             out: Annotated[Path, typer.Option(help="Where to write NAME.pem and NAME.key.")] = Path("."),
             server: Annotated[list[str] | None, typer.Option(help="Issue a broker certificate for this host/IP.")]
             = None) -> None:
    """Issue a client (or, with --server, a broker) certificate signed by the fleet CA."""
    from . import ca

    try:
        cert, key = ca.issue(name, out, server_hosts=server or None)
    except FleetError as exc:
        raise fail(str(exc)) from exc
    err.print(f"certificate {cert}, key {key}")


def _register_fleet() -> None:
    from . import cli_fleet  # noqa: F401 - its @app.command()s register the fleet commands


_register_fleet()


def main() -> None:
    setup_logging()
    app()
