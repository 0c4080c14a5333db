"""Output shared by every command: JSON on stdout, tables via rich, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# Piped output keeps whole table rows on one line instead of wrapping at 80 columns.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document, non-ASCII kept as it is."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    """The single line a user sees for a failure."""
    sys.stderr.write(f"lavanya: error: {message}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    """Something the user should know that does not stop the command (stderr, never stdout)."""
    sys.stderr.write(f"lavanya: warning: {message}\n")
    sys.stderr.flush()
