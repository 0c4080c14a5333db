"""Git LFS pointer files, recognised by the pointer spec before anything tries to parse them.

numpy and torch report a pointer as a corrupt archive or a pickle error; checking first lets
every caller say "this is an LFS pointer, run git lfs pull" instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

POINTER_MAX_BYTES = 1024
POINTER_FIRST_LINE = b"version https://git-lfs.github.com/spec/v1"
_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$")
_SIZE = re.compile(rb"^size (\d+)$")


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int


def parse_pointer(data: bytes) -> LfsPointer | None:
    """The pointer that ``data`` holds, or None when it is not a pointer file."""
    if len(data) >= POINTER_MAX_BYTES:
        return None
    lines = data.split(b"\n")
    if not lines or lines[0].rstrip(b"\r") != POINTER_FIRST_LINE:
        return None
    oid = size = None
    for line in lines[1:]:
        line = line.rstrip(b"\r")
        if match := _OID.match(line):
            oid = match.group(1).decode()
        elif match := _SIZE.match(line):
            size = int(match.group(1))
    if oid is None or size is None:
        return None
    return LfsPointer(oid=oid, size=size)


def read_pointer(path: Path) -> LfsPointer | None:
    """The pointer stored at ``path``, or None for real content (or a file that cannot be read)."""
    try:
        if path.stat().st_size >= POINTER_MAX_BYTES:
            return None
        return parse_pointer(path.read_bytes())
    except OSError:
        return None


def pull_command(path: Path, repo_root: Path | None = None) -> str:
    """The command that fetches the content behind a pointer."""
    try:
        include = path.relative_to(repo_root) if repo_root else path
    except ValueError:
        include = path
    return f'git lfs pull --include="{include.as_posix()}"'


def file_state(path: Path | None) -> tuple[str, LfsPointer | None]:
    """``("present", None)``, ``("lfs-pointer", pointer)`` or ``("missing", None)``."""
    if path is None or not path.is_file():
        return "missing", None
    pointer = read_pointer(path)
    return ("lfs-pointer", pointer) if pointer else ("present", None)


def git_root(path: Path) -> Path | None:
    """The working tree that holds ``path`` (the nearest parent with ``.git``), if any."""
    for parent in Path(path).resolve().parents:
        if (parent / ".git").exists():
            return parent
    return None


def require_content(path: Path, what: str) -> None:
    """Raise a one-line LavanyaError when ``path`` is missing or only a Git LFS pointer."""
    from ..errors import LavanyaError

    state, pointer = file_state(path)
    if state == "missing":
        raise LavanyaError(f"{path}: {what} is missing")
    if pointer is not None:
        command = pull_command(Path(path).resolve(), git_root(path))
        raise LavanyaError(
            f"{path}: {what} is a Git LFS pointer ({pointer.size / 1e6:.1f} MB not downloaded); "
            f"run: {command}"
        )
