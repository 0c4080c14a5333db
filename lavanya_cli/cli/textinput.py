"""Where a command's text comes from: ``--text``, a positional argument, ``--input FILE`` or
standard input; and the batch files ``--lines`` / ``--jsonl``. ``lavanya text`` and ``lavanya
synth`` share this so they read text alike.

Every read is bounded by the input limit (``lavanya_cli.limits.input_limit``: ``--max-input``,
``$LAVANYA_MAX_INPUT``, 1 MiB by default) and comes only from a regular file, a pipe or a socket
(or a terminal, when asked for with ``--input -``): ``--input /dev/zero`` or a 300 MB pipe is
one line, never an endless read or a full memory.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import LavanyaError, one_line
from ..fileio import file_kind, open_regular
from ..limits import INPUT_LIMIT_DEFAULT, input_limit_hint

if TYPE_CHECKING:
    from ..batch.jobs import Job

SOURCES_HINT = "give TEXT, --text TEXT, --input FILE, or pipe the text on standard input"
STDIN = "-"


def read_text_source(
    text: str | None = None, positional: str | None = None, input_file: Path | None = None, *,
    limit: int = INPUT_LIMIT_DEFAULT, over=input_limit_hint,
) -> str:
    """The one text the user gave, at most ``limit`` bytes of UTF-8. ``--input -`` and no source
    at all read standard input (the latter only when it is not a terminal, so a bare command
    never waits silently). ``over(limit)``: what to tell a user whose text is longer."""
    given = [source for source in (text, positional, input_file) if source is not None]
    if len(given) > 1:
        raise LavanyaError(f"more than one text given: {SOURCES_HINT}, only one of them")
    if text is not None or positional is not None:
        typed = text if text is not None else positional
        if len(typed.encode("utf-8", "surrogatepass")) > limit:
            raise LavanyaError(f"the text is {over(limit)}")
        return typed
    if input_file is None:
        if sys.stdin is not None and sys.stdin.isatty():
            raise LavanyaError(f"no text: {SOURCES_HINT}")
        return read_input(STDIN, limit, "standard input", over)
    return read_input(input_file, limit, "--input", over)


def read_input(source: Path | str, limit: int, option: str, over=input_limit_hint) -> str:
    """UTF-8 text (a BOM dropped) from ``source``, a path or ``-`` for standard input, of at most
    ``limit`` bytes: from a regular file, a pipe or a socket, never from a device or directory.
    ``over(limit)``: what to tell a user whose text is longer."""
    if str(source) == STDIN:
        return _decode(_read_stdin(limit), "standard input", limit, over)
    path = Path(source)
    try:
        info = os.stat(path)
        if stat.S_ISREG(info.st_mode):
            handle = open_regular(path, option)
        elif stat.S_ISFIFO(info.st_mode) or stat.S_ISSOCK(info.st_mode):
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        else:
            raise LavanyaError(f"{path}: {option} is {file_kind(info.st_mode)}; give a text file or a pipe")
        with handle:
            kind = os.fstat(handle.fileno()).st_mode
            if not (stat.S_ISREG(kind) or stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind)):  # swapped meanwhile
                raise LavanyaError(f"{path}: {option} is {file_kind(kind)}; give a text file or a pipe")
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise LavanyaError(f"{path}: no such file ({option})") from None
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read {option} ({one_line(exc)})") from None
    return _decode(data, f"{path}", limit, over)


def _read_stdin(limit: int) -> bytes | str:
    """Up to ``limit + 1`` bytes of standard input (characters from an in-memory stand-in)."""
    stream = sys.stdin
    if stream is None:
        raise LavanyaError(f"no standard input: {SOURCES_HINT}")
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return stream.read(limit + 1)  # an in-memory stream (tests, embedding)
    mode = os.fstat(fd).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
        raise LavanyaError(f"standard input is {file_kind(mode)}; pipe the text or give --input FILE")
    try:
        return stream.buffer.read(limit + 1)
    except OSError as exc:
        raise LavanyaError(f"cannot read the text from standard input ({one_line(exc)})") from None


def _decode(data: bytes | str, where: str, limit: int, over=input_limit_hint) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > limit:
        raise LavanyaError(f"{where}: the text is {over(limit)}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LavanyaError(f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def read_batch(lines: Optional[Path], jsonl: Optional[Path], output_dir: Path, lang: Optional[str],
               gender: Optional[str], alpha: Optional[float], limit: int) -> list["Job"]:
    """The jobs of a ``--lines`` or ``--jsonl`` file (read within ``limit`` bytes), outputs placed
    under ``output_dir``; the one reader of a batch for both runners."""
    from ..batch.jobs import jobs_from_jsonl, jobs_from_lines

    if lines is not None and jsonl is not None:
        raise LavanyaError("give --lines or --jsonl, not both")
    if lines is not None:
        return jobs_from_lines(read_input(lines, limit, "--lines"), str(lines), output_dir, lang, gender, alpha)
    return jobs_from_jsonl(read_input(jsonl, limit, "--jsonl"), str(jsonl), output_dir, lang, gender, alpha)
