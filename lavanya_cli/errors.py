"""The one exception type the CLI turns into a one-line message, and the exit codes, all here."""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as shells report an interrupted command
EXIT_TERMINATED = 143  # SIGTERM (kill, docker stop, systemd): 128 + 15


class LavanyaError(Exception):
    """A user-facing failure: the message names the file and the fix; no traceback is shown."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no library's
    ``except Exception`` swallows it and every ``finally`` (temporary files) runs on the way out;
    ``cli.main`` turns it into one line and ``exit_code``."""

    def __init__(self, signum: int):
        name = signal.Signals(signum).name
        self.signum = signum
        self.exit_code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        self.message = f"{'terminated' if signum == signal.SIGTERM else 'interrupted'} ({name})"
        super().__init__(self.message)
