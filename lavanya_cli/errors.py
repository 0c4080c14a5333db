"""The one exception type the CLI turns into a one-line message, and the exit codes, all here."""

from __future__ import annotations

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # SIGINT or SIGTERM: 128 + SIGINT, as shells report an interrupted command


class LavanyaError(Exception):
    """A user-facing failure: the message names the file and the fix; no traceback is shown."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
