"""The one output layer: a command hands its ``Result`` to ``Output.finish``, which prints it in
the format the user chose and exits with its code. Commands never test the format themselves.

``text`` is for people: the result's lines, a table, one line per problem
(``path: [code] message; fix: ...``) and a summary on stdout; warnings and notes on stderr.
``json`` is one JSON document on stdout and nothing else there (problems under ``"problems"``
as ``{"path", "code", "message", "fix"}``). ``github`` puts one GitHub Actions annotation per
problem on stdout (the fix in its message) and the text report on stderr, where the job log
still shows it. Failures that stop a command (a ``LavanyaError``) are one ``lavanya: error:``
line on stderr in every format (``cli.main``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from ..checks.problems import WARNING, Problem
from ..errors import exit_status

# Piped output keeps whole table rows on one line instead of wrapping at 80 columns.
stdout = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
stderr = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


class OutputFormat(str, Enum):
    """The formats of the checking commands."""

    text = "text"
    json = "json"
    github = "github"


class PlainFormat(str, Enum):
    """The formats of the other commands: they have no problems to annotate."""

    text = "text"
    json = "json"


@dataclass
class Result:
    """What a command produced, in every form a format may need.

    ``data``: the JSON document (a dict gets ``"problems"`` added when the command reports
    problems). ``lines``, ``table`` (headers, rows) and ``summary``: the text report, in that
    order around the problem lines. ``problems``: what is wrong; they decide the exit code
    unless ``exit_code`` is given. ``warnings``: problems that do not fail the command, or plain
    sentences. ``notes``: stderr lines for people (where a voice came from). ``base``: the
    directory problem paths are relative to (GitHub needs each file's place in the workspace).
    ``problems_to_stderr``: the text report on stdout is data (a ``.gitattributes``), so problem
    lines go to stderr. ``shown_live``: the command already showed its problems and warnings
    to a person as they happened (a checklist), so text does not repeat them.
    """

    data: Any = None
    lines: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    problems: list[Problem] | None = None
    summary: list[str] = field(default_factory=list)
    warnings: list[Problem | str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    base: Path | None = None
    exit_code: int | None = None
    problems_to_stderr: bool = False
    shown_live: bool = False

    @property
    def status(self) -> int:
        return self.exit_code if self.exit_code is not None else exit_status(bool(self.problems))


class Output:
    """Prints one command's result in ``format``; ``command`` names it in annotation titles."""

    def __init__(self, format: OutputFormat | PlainFormat | str, command: str):
        self.format = OutputFormat(getattr(format, "value", format))
        self.command = command

    @property
    def stdout_reserved(self) -> bool:
        """Whether stdout holds the result itself (the JSON document, the annotations), so that
        nothing else (a WAV, a library's notice) may be written there."""
        return self.format is not OutputFormat.text

    @property
    def live(self) -> bool:
        """Whether progress may be shown as it happens (a checklist, a progress bar): not when
        stdout is one JSON document."""
        return self.format is not OutputFormat.json

    def progress(self, line: str) -> None:
        """One line of progress, as it happens: on stdout for text, on stderr for github (stdout
        holds only annotations there), nowhere for JSON."""
        if self.format is OutputFormat.text:
            echo(line)
        elif self.format is OutputFormat.github:
            echo(line, err=True)

    @contextlib.contextmanager
    def own_stdout(self) -> Iterator[None]:
        """While the command works, anything a library prints on stdout goes to stderr when
        stdout is reserved for the result (the JSON document, the annotations)."""
        if not self.stdout_reserved:
            yield
            return
        with contextlib.redirect_stdout(sys.stderr):
            yield

    def emit(self, result: Result) -> None:
        """Print ``result`` in this format."""
        if self.format is OutputFormat.json:
            self._json(result)
            return
        annotate = self.format is OutputFormat.github
        report = sys.stderr if annotate else sys.stdout
        for line in result.lines:
            echo(line, report)
        if result.table is not None:
            _print_table(*result.table, stderr if annotate else stdout)
        for problem in result.problems or ():
            if annotate:
                echo(annotation(problem, self.command, result.base))
            elif not result.shown_live:
                if result.problems_to_stderr:
                    error_line(problem.line())
                else:
                    echo(problem.line())
        for line in result.summary:
            echo(line, report)
        for warning in result.warnings:
            if isinstance(warning, Problem) and annotate:
                echo(annotation(warning, self.command, result.base))
            elif not result.shown_live:
                warning_line(warning.line() if isinstance(warning, Problem) else warning)
        for note in result.notes:
            echo(note, sys.stderr)

    def finish(self, result: Result) -> NoReturn:
        """Print ``result`` and end the command with its exit code."""
        import typer

        self.emit(result)
        raise typer.Exit(result.status)

    def _json(self, result: Result) -> None:
        data = result.data
        problems = [problem.as_dict() for problem in result.problems or ()]
        if isinstance(data, dict) and result.problems is not None:
            data = {**data, "problems": problems}
        elif problems:  # a document that is a list: the problems cannot join it
            for problem in result.problems:
                error_line(problem.line())
        print_json(data)


def annotation(problem: Problem, command: str, base: Path | None = None) -> str:
    """A GitHub Actions ``::error`` (or ``::warning``) workflow command for ``problem``, with the
    fix in its message. GitHub attaches it to a file by the file's path relative to the
    workspace (``$GITHUB_WORKSPACE``, else the working directory); a problem without a path, or
    one outside the workspace, gets no file."""
    properties = []
    if problem.path:
        workspace = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
        located = os.path.abspath(Path(base or ".") / problem.path)
        inside = os.path.relpath(located, workspace)
        properties.append(f"file={_escape_property(Path(located if inside.startswith('..') else inside).as_posix())}")
    properties.append(f"title={_escape_property(f'lavanya {command}: {problem.code}')}")
    message = problem.message + (f"; fix: {problem.fix}" if problem.fix else "")
    kind = "warning" if problem.level == WARNING else "error"
    return f"::{kind} {','.join(properties)}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``), escaped as the runner
    unescapes it."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _print_table(headers: list[str], rows: list[list[str]], console: Console) -> None:
    """Columns aligned by rich, every cell through ``printable`` and markup-escaped."""
    if not rows:
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*(escape(printable(cell)) for cell in row))
    console.print(table)


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


def counted(number: int, thing: str) -> str:
    """``1 actor``, ``2 actors``: a count and its noun, in the number that fits."""
    return f"{number} {thing}{'' if number == 1 else 's'}"


def error_line(message: str) -> None:
    """The single line a user sees for a failure."""
    sys.stderr.write(f"lavanya: error: {printable(message)}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    """Something the user should know that does not stop the command (stderr, never stdout)."""
    sys.stderr.write(f"lavanya: warning: {printable(message)}\n")
    sys.stderr.flush()


def echo(line: str, stream: Any = None, *, err: bool = False) -> None:
    """One line of a command's text output (stdout, or ``stream``, or stderr with ``err``),
    through ``printable``."""
    stream = stream or (sys.stderr if err else sys.stdout)
    stream.write(printable(line) + "\n")
    stream.flush()
