"""The ``lavanya`` command. Each command group lives in its own module over the library."""

from __future__ import annotations

import os
import sys
import traceback

from ..errors import EXIT_USAGE, LavanyaError
# Importing a command module registers its commands on ``app``.
from . import bench, export, fix_config, fix_perms, fix_stats, lfs_track, synth, text, verify, voices  # noqa: F401
from .app import app
from .output import error_line


# Modules of the ``synth`` extra; a light install (maintenance only) lacks them.
SYNTH_MODULES = {"torch", "torchaudio", "espnet", "espnet2", "soundfile", "matplotlib"}


def main(argv: list[str] | None = None) -> int:
    """Console entry point: user errors become one line and an exit code, never a traceback."""
    try:
        app(args=argv, prog_name="lavanya")
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except LavanyaError as exc:
        error_line(exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except Exception as exc:
        if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in SYNTH_MODULES:
            error_line(f"this needs the synthesis libraries ({exc.name} is not installed): "
                       "python3 -m pip install 'lavanya[synth]'")
            return EXIT_USAGE
        # an internal error: one line, the traceback only on request
        if os.environ.get("LAVANYA_DEBUG"):
            traceback.print_exc()
        error_line(f"internal error: {type(exc).__name__}: {exc} (set LAVANYA_DEBUG=1 for a traceback)")
        return EXIT_USAGE
    return 0


def run() -> None:
    sys.exit(main())
