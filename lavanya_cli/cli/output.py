"""Output shared by every command: JSON on stdout, tables via rich, one-line errors on stderr."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Any

from rich.console import Console

# Piped output keeps whole table rows on one line instead of wrapping at 80 columns.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


# Bidirectional-text controls: they can make a line read differently from what it holds.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """``text`` safe to print as one line: control characters (newlines, escape sequences), line
    and paragraph separators and bidi controls become ``\\n``, ``\\x1b``, ``\\u2028``...; bytes of a
    file name that is not UTF-8 become ``\\xff``. A file name can then never forge a line of
    output or move the cursor. Every command's text output goes through this."""
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in _BIDI_CONTROLS or unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document, non-ASCII kept as it is (JSON escapes control
    characters itself; a file name's undecodable bytes become ``\\udcXX`` escapes)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
    sys.stdout.flush()


def error_line(message: str) -> None:
    """The single line a user sees for a failure."""
    sys.stderr.write(f"lavanya: error: {printable(message)}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    """Something the user should know that does not stop the command (stderr, never stdout)."""
    sys.stderr.write(f"lavanya: warning: {printable(message)}\n")
    sys.stderr.flush()


def echo(line: str, err: bool = False) -> None:
    """One line of a command's text output, through ``printable``."""
    stream = sys.stderr if err else sys.stdout
    stream.write(printable(line) + "\n")
    stream.flush()
