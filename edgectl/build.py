"""`edgectl build` and `edgectl toolchain`: the host side of a bundle."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fleet.errors import FleetError
from runtimes.errors import RuntimesError

from .output import emit_json, err, fail, first_line, stdout_to_log

if TYPE_CHECKING:  # the converters load only when a build runs
    from builder.api import BuildRequest

cache_app = typer.Typer(help="The build cache: targets kept by what decides them.", no_args_is_help=True)
toolchain_app = typer.Typer(help="Isolated converter environments (explicit installs only).", no_args_is_help=True)


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
    cache_dir: Annotated[Path | None, typer.Option(help="Build cache directory (default: $EDGECTL_BUILD_CACHE, "
                                                   "else ~/.cache/edgectl/build).")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Convert and measure every target again; "
                                           "neither read nor write the build cache.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")] = False,
) -> None:
    """Build a signed bundle of per-target artifacts from one model."""
    from builder import api  # lazy: `edgectl status` on a laptop never imports the converters

    _run_build(api.BuildRequest(
        model=model, calib=calib, val=val, out=out, targets=targets, name=name, version=version, labels=labels,
        task=task, preprocess=preprocess, postprocess=postprocess, input_name=input_name,
        input_shapes=input_shape or [], min_top1=min_top1, min_top5=min_top5, min_top1_fp16=min_top1_fp16,
        min_agreement=min_agreement, min_agreement_fp16=min_agreement_fp16, recovery_budget_s=recovery_budget,
        strict=strict, force=force, cache_dir=cache_dir, use_cache=not no_cache), as_json)


def _run_build(request: BuildRequest, as_json: bool) -> None:
    """Run a build and turn its failures into one line (the summary too with --json)."""
    from builder import api
    from builder.errors import BuilderError, BuildFailed

    model, strict = request.model, request.strict
    try:
        with stdout_to_log():
            summary = api.build(request, console=err)
    except BuildFailed as exc:
        if as_json:
            emit_json(exc.summary)
        raise fail(str(exc), code=1) from exc
    except (BuilderError, FleetError, RuntimesError) as exc:
        raise fail(str(exc)) from exc
    except Exception as exc:  # a model that breaks a converter in a way we have not met: still one line
        logging.getLogger("builder").debug("unexpected failure", exc_info=True)
        raise fail(f"{model}: the build failed unexpectedly: {type(exc).__name__}: {first_line(exc)} "
                   "(EDGECTL_DEBUG=1 shows the traceback)") from exc
    if as_json:
        emit_json(summary)
    if strict and any(t["status"] != "ok" for t in summary["targets"]):
        raise typer.Exit(1)


@toolchain_app.command("install")
def toolchain_install(name: Annotated[str, typer.Argument(help="Toolchain name, e.g. tflite.")]) -> None:
    """Create an isolated converter environment (a few minutes, about 2 GB for tflite)."""
    from builder import toolchains
    from builder.errors import BuilderError

    try:
        chain = toolchains.lookup(name)
        with err.status(f"installing toolchain {name}: {', '.join(chain.packages)}") as status:
            where = toolchains.install(name, lambda line: status.update(f"{name}: {line[:100]}"))
    except BuilderError as exc:
        raise fail(str(exc)) from exc
    err.print(f"toolchain {name} ready at {where}")


@toolchain_app.command("status")
def toolchain_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Which toolchains are installed."""
    from builder import toolchains

    rows = {n: {"installed": toolchains.stamp(n) is not None, "path": str(toolchains.env_dir(n)),
                "packages": list(t.packages)} for n, t in toolchains.TOOLCHAINS.items()}
    if as_json:
        emit_json(rows)
        return
    for name, row in rows.items():
        typer.echo(f"{name:8} {'installed' if row['installed'] else 'missing':9} {row['path']}")


@cache_app.command("info")
def cache_info(cache_dir: Annotated[Path | None, typer.Option(help="Build cache directory.")] = None,
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Where the build cache is, how many entries and bytes it holds."""
    from builder.cache import BuildCache, default_dir

    info = BuildCache(cache_dir or default_dir()).info()
    if as_json:
        emit_json(info)
        return
    typer.echo(f"{info['dir']}: {info['entries']} entries, {info['bytes'] / 1e6:.1f} MB "
               f"(cap {info['cap_bytes'] / 1e9:.1f} GB), last used {info['last_used'] or 'never'}")


@cache_app.command("clear")
def cache_clear(cache_dir: Annotated[Path | None, typer.Option(help="Build cache directory.")] = None) -> None:
    """Remove every entry of the build cache."""
    from builder.cache import BuildCache, default_dir

    cache = BuildCache(cache_dir or default_dir())
    typer.echo(f"{cache.root}: removed {cache.clear()} entries")
