"""Where a command's text comes from: ``--text``, a positional argument, ``--input FILE`` or
standard input. ``lavanya text`` and ``lavanya synth`` share this so they read text alike."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import LavanyaError

SOURCES_HINT = "give TEXT, --text TEXT, --input FILE, or pipe the text on standard input"


def read_text_source(
    text: str | None = None, positional: str | None = None, input_file: Path | None = None
) -> str:
    """The one text the user gave. ``--input -`` and no source at all read standard input (the
    latter only when it is not a terminal, so a bare command never waits silently)."""
    given = [source for source in (text, positional, input_file) if source is not None]
    if len(given) > 1:
        raise LavanyaError(f"more than one text given: {SOURCES_HINT}, only one of them")
    if text is not None or positional is not None:
        return text if text is not None else positional
    if input_file is not None and str(input_file) != "-":
        try:
            return Path(input_file).read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise LavanyaError(f"{input_file}: no such file (--input)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise LavanyaError(f"{input_file}: cannot read the text as UTF-8 ({exc})") from None
    if input_file is None and sys.stdin is not None and sys.stdin.isatty():
        raise LavanyaError(f"no text: {SOURCES_HINT}")
    try:
        return sys.stdin.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise LavanyaError(f"cannot read the text from standard input ({exc})") from None
