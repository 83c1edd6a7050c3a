"""Everything edgectl prints: one JSON document on stdout for `--json`, everything else on stderr."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import typer
from rich.console import Console

err = Console(stderr=True)
_QUIT = threading.Event()


def fail(message: str, code: int = 2) -> typer.Exit:
    """One red line on stderr and the exit to raise: `raise fail("…") from exc`."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def emit_json(doc: Any) -> None:
    """Indented for a person at a terminal; compact for a pipe (json's C encoder only runs without indent:
    10,000 status rows took 0.4 s indented)."""
    sys.stdout.write(json.dumps(doc, indent=2 if sys.stdout.isatty() else None) + "\n")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def stop_on_signals() -> None:
    """For commands that run until stopped (`metrics`, `bundles serve`): SIGTERM and SIGINT end the wait of
    `pause`. They are unblocked too: a parent that blocked them (systemd does not, a test runner may) would
    otherwise leave this process unstoppable but by SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: _QUIT.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def pause(seconds: float) -> bool:
    """Wait on an event (never a bare sleep); True when asked to quit."""
    return _QUIT.wait(seconds)


@contextlib.contextmanager
def stdout_to_log() -> Iterator[None]:
    """Converters (NNCF, ONNX Runtime, TensorFlow) print to stdout, some from C: fd 1 goes to a file for the
    duration, and its lines to the debug log (EDGECTL_DEBUG=1 shows them), so neither our progress lines on
    stderr nor the one JSON document on stdout are interleaved with theirs."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real fd 1 (embedded use): nothing to protect
        yield
        return
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 1)
        # Python-level prints follow sys.stdout, which a host (a test runner, a notebook) may have replaced.
        py_stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115 (closed below, fd 1 stays)
        try:
            with contextlib.redirect_stdout(py_stdout):
                yield
        finally:
            py_stdout.close()
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            caught.seek(0)
            _log_lines(caught.read().decode(errors="replace"))


def _log_lines(text: str) -> None:
    log = logging.getLogger("builder.converters")
    for line in text.replace("\r", "\n").splitlines():
        if line.strip():
            log.debug("%s", line.rstrip())


def setup_logging() -> None:
    debug = os.environ.get("EDGECTL_DEBUG") == "1"
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for ours in ("builder", "runtimes"):
        logging.getLogger(ours).setLevel(logging.DEBUG if debug else logging.INFO)
