"""Output shared by every command: JSON on stdout, tables via rich, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document, non-ASCII kept as it is."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    """The single line a user sees for a failure."""
    sys.stderr.write(f"lavanya: error: {message}\n")
    sys.stderr.flush()
