"""The ``lavanya`` command. Each command group lives in its own module over the library."""

from __future__ import annotations

import os
import sys
import traceback

from ..errors import EXIT_USAGE, LavanyaError
from . import voices  # noqa: F401  (registers the command)
from . import repair, verify  # noqa: F401  (register verify, fix-stats, fix-config)
from . import text  # noqa: F401  (registers the command)
from . import synth  # noqa: F401  (registers the command)
from . import bench  # noqa: F401  (registers the command)
from . import lfs  # noqa: F401  (registers lfs-track)
from . import perms  # noqa: F401  (registers fix-perms)
from .app import app
from .output import error_line


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
    except Exception as exc:  # an internal error: one line, the traceback only on request
        if os.environ.get("LAVANYA_DEBUG"):
            traceback.print_exc()
        error_line(f"internal error: {type(exc).__name__}: {exc} (set LAVANYA_DEBUG=1 for a traceback)")
        return EXIT_USAGE
    return 0


def run() -> None:
    sys.exit(main())
