"""What every caller of lavanya relies on: its version, the exceptions the CLI turns into one
line, the exit codes, and an exception's message as one line; all here, so that every command
and library speaks of failures the same way."""

from __future__ import annotations

import contextlib
import importlib
import signal
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# The one place the version is written: pyproject.toml reads it, exports and --version report it.
__version__ = "0.1.0"

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C): 128 + 2, as shells report an interrupted command
EXIT_TERMINATED = 143  # SIGTERM (kill, docker stop, systemd): 128 + 15

# The longest exception text ``one_line`` keeps: a library's message can run to pages (a
# state-dict mismatch lists every key), and a user reads one line.
ONE_LINE_MAX_CHARS = 300


class LavanyaError(Exception):
    """A user-facing failure: the message names the file and the fix; no traceback is shown.
    ``details``: further lines, each a failure of its own (every invalid line of a job file),
    shown after the message."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE, details: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details


# How messages name an option: from Python, the parameter (``engine``); on the command line, the
# flag (``--engine``). The CLI switches the wording for the length of a command (``flag_wording``);
# a library message names an option only through ``option``, so it is right for either caller.
_wording = {"flags": False}


def option(name: str, flag: str | None = None) -> str:
    """The option ``name`` (a Python parameter) as a message should name it now: ``name`` from
    Python, its flag on the command line (``flag``, else ``--`` and the name with dashes)."""
    if not _wording["flags"]:
        return name
    return flag or "--" + name.replace("_", "-")


@contextlib.contextmanager
def flag_wording(flags: bool = True) -> Iterator[None]:
    """Messages made inside name options by their command-line flags (``flags=False``: by their
    Python names, as a server's answers to its HTTP clients do)."""
    previous = _wording["flags"]
    _wording["flags"] = flags
    try:
        yield
    finally:
        _wording["flags"] = previous


def flag_wording_in_use() -> bool:
    """Whether messages name flags now: a Ray driver hands this to its workers, processes of
    their own."""
    return _wording["flags"]


# The optional extras, the words for them, and the top-level modules each brings: a light
# install (maintenance only) lacks them, and what needs one says which to install.
EXTRAS = {
    "torch": ("the torch engine and its libraries", {"torch", "torchaudio", "espnet", "espnet2", "onnx", "soundfile"}),
    "plot": ("matplotlib, for the spectrogram picture", {"matplotlib"}),
    "openvino": ("the OpenVINO engine", {"openvino"}),
    "serve": ("the server libraries", {"fastapi", "uvicorn", "starlette", "prometheus_client", "anyio", "pydantic",
                                       "httptools"}),
    "ray": ("Ray, for batches on a cluster", {"ray", "pyarrow"}),
}


def extra_of(module: str | None) -> str | None:
    """The extra that installs ``module``, if it is one of theirs."""
    top = (module or "").split(".")[0]
    return next((extra for extra, (_, modules) in EXTRAS.items() if top in modules), None)


def missing_library(exc: ModuleNotFoundError) -> LavanyaError | None:
    """The one line for a missing optional library (None where the module is no extra's)."""
    extra = extra_of(exc.name)
    if extra is None:
        return None
    return LavanyaError(f"this needs {EXTRAS[extra][0]} ({exc.name} is not installed): "
                        f"python3 -m pip install 'lavanya[{extra}]'")


def import_optional(module: str) -> ModuleType:
    """``module``, imported; where it is missing, a LavanyaError with the install line of its
    extra (from Python as from the command line)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise (missing_library(exc) or exc) from None


class FileError(LavanyaError):
    """A failure about one file, with ``reason`` (what is wrong) and ``fix`` (what to do) kept
    apart and without the path, for problem lists; ``message`` is the whole line."""

    def __init__(self, path: Path, reason: str, fix: str = "", exit_code: int = EXIT_USAGE):
        super().__init__(f"{path}: {reason}" + (f"; {fix}" if fix else ""), exit_code)
        self.path = Path(path)
        self.reason = reason
        self.fix = fix


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that no library's
    ``except Exception`` swallows it and every ``finally`` (temporary files) runs on the way out;
    ``cli.main`` turns it into one line and ``exit_code`` (only the code where ``announced``:
    the command has said it already, as the server's log does)."""

    def __init__(self, signum: int, announced: bool = False):
        name = signal.Signals(signum).name
        self.signum = signum
        self.announced = announced
        self.exit_code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
        self.message = f"{'terminated' if signum == signal.SIGTERM else 'interrupted'} ({name})"
        super().__init__(self.message)


def exit_status(problems_found: bool) -> int:
    """The exit code of a command that ran to the end: EXIT_PROBLEMS when it found (or left)
    something wrong, else EXIT_OK."""
    return EXIT_PROBLEMS if problems_found else EXIT_OK


def one_line(exc: BaseException, limit: int = ONE_LINE_MAX_CHARS) -> str:
    """What went wrong, for a message, on one line: an OSError's ``strerror`` ("Permission
    denied"); a YAML error's problem and where (``expected ',' or ']' (line 2, column 1)``);
    else the exception's text with its lines and runs of white space folded (torch errors span
    several lines). Cut at ``limit`` characters; the exception's type name when it has no text."""
    text = getattr(exc, "strerror", None)
    problem, mark = getattr(exc, "problem", None), getattr(exc, "problem_mark", None)
    if not text and isinstance(problem, str):
        text = problem + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else "")
    text = " ".join(str(text or exc).split())
    if not text:
        return type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
