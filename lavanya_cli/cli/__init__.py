"""The ``lavanya`` command. Each command group lives in its own module over the library."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import traceback

from ..errors import (EXIT_INTERRUPTED, EXIT_OK, EXIT_TERMINATED, EXIT_USAGE, LavanyaError, Stopped, flag_wording,
                      missing_library)
# Importing a command module registers its commands on ``app``.
from . import add_voice, bench, export, fix_config, fix_perms, fix_stats, lfs_track, serve, synth, text, verify, voices  # noqa: F401
from .app import app
from .output import error_line


# Signals that stop a command: each unwinds as ``Stopped`` so temporary files are removed.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one line and an exit code, never a traceback;
    SIGINT and SIGTERM become one line and 130 or 143, with every temporary file removed."""
    with _stop_on_signals(), flag_wording():
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
            if isinstance(exc, ModuleNotFoundError) and (missing := missing_library(exc)):
                error_line(missing.message)
                return EXIT_USAGE
            # an internal error: one line, the traceback only on request
            if os.environ.get("LAVANYA_DEBUG"):
                traceback.print_exc()
            error_line(f"internal error: {type(exc).__name__}: {exc} (set LAVANYA_DEBUG=1 for a traceback)")
            return EXIT_USAGE
    return EXIT_OK


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
