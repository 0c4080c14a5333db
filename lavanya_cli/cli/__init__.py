"""The ``lavanya`` command. Each command group lives in its own module over the library."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback

from ..errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, LavanyaError, Stopped
# Importing a command module registers its commands on ``app``.
from . import add_voice, bench, export, fix_config, fix_perms, fix_stats, lfs_track, serve, synth, text, verify, voices  # noqa: F401
from .app import app
from .output import error_line


# The optional extras, the words for them, and the top-level modules each brings: a light
# install (maintenance only) lacks them, and a command that needs one says which to install.
EXTRAS = {
    "torch": ("the torch engine and its libraries", {"torch", "torchaudio", "espnet", "espnet2", "onnx", "soundfile"}),
    "plot": ("matplotlib, for the spectrogram picture", {"matplotlib"}),
    "openvino": ("the OpenVINO engine", {"openvino"}),
    "serve": ("the server libraries", {"fastapi", "uvicorn", "starlette", "prometheus_client", "anyio", "pydantic",
                                       "httptools"}),
    "ray": ("Ray, for batches on a cluster", {"ray", "pyarrow"}),
}
# Signals that stop a command: each unwinds as ``Stopped`` so temporary files are removed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one line and an exit code, never a traceback;
    SIGINT and SIGTERM become one line and 130 or 143, with every temporary file removed."""
    with _stop_on_signals():
        try:
            app(args=argv, prog_name="lavanya")
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
        except (LavanyaError, Stopped) as exc:
            if not getattr(exc, "announced", False):
                error_line(exc.message)
            for detail in getattr(exc, "details", ()):
                error_line(detail)
            return exc.exit_code
        except Exception as exc:
            if isinstance(exc, ModuleNotFoundError) and (extra := _extra_of(exc.name)):
                error_line(f"this needs {EXTRAS[extra][0]} ({exc.name} is not installed): "
                           f"python3 -m pip install 'lavanya[{extra}]'")
                return EXIT_USAGE
            # an internal error: one line, the traceback only on request
            if os.environ.get("LAVANYA_DEBUG"):
                traceback.print_exc()
            error_line(f"internal error: {type(exc).__name__}: {exc} (set LAVANYA_DEBUG=1 for a traceback)")
            return EXIT_USAGE
    return EXIT_OK


def _extra_of(module: str | None) -> str | None:
    """The extra that installs ``module``, if it is one of theirs."""
    top = (module or "").split(".")[0]
    return next((extra for extra, (_, modules) in EXTRAS.items() if top in modules), None)


@contextlib.contextmanager
def _stop_on_signals():
    """SIGINT and SIGTERM raise ``Stopped`` (typer would turn a KeyboardInterrupt into a silent
    exit 130, and SIGTERM's default kills the process before any cleanup). After the first, both
    are ignored so that the cleanup it starts is not cut short. The previous handlers come back
    at the end: ``main`` also runs in-process (tests, scripts)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def stop(signum, _frame):
        for other in STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        raise Stopped(signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def run() -> None:
    code = main()
    if code in (EXIT_INTERRUPTED, EXIT_TERMINATED) and "lavanya_cli.speech.cancel" in sys.modules:
        from ..speech.cancel import runtime_still_busy

        if runtime_still_busy():  # a runtime still compiling: its threads would outlive the interpreter
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)
