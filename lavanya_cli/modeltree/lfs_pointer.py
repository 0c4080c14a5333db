"""What is at a path a voice needs (``FileState``, ``probe``), and Git LFS pointer files,
recognised by the pointer spec before anything tries to parse them.

numpy and torch report a pointer as a corrupt archive or a pickle error; checking first lets
every caller say "this is an LFS pointer, run git lfs pull" instead. ``probe`` is the one place
that looks: ``voices``, ``verify``, the repairs and synthesis's ``require_content`` all name a
file's state with the same ``FileState``, and none of them blocks on a FIFO or reads a device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

POINTER_MAX_BYTES = 1024
POINTER_FIRST_LINE = b"version https://git-lfs.github.com/spec/v1"
_OID = re.compile(rb"^oid sha256:([0-9a-f]{64})$")
_SIZE = re.compile(rb"^size (\d{1,19})$")
# git-lfs reads the size as a signed 64-bit integer; a larger one makes the file no pointer.
_SIZE_MAX = (1 << 63) - 1


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
    if oid is None or size is None or size > _SIZE_MAX:
        return None
    return LfsPointer(oid=oid, size=size)


def read_pointer(path: Path) -> LfsPointer | None:
    """The pointer stored at ``path``, or None for real content or anything that is not a readable
    regular file (a FIFO or device is never opened for a blocking read)."""
    return probe(path).pointer


def pull_command(path: Path, root: Path | None = None) -> str:
    """The command that fetches the content behind the pointer at ``path``: its path inside the
    git working tree that holds it (its directory's real location), as ``git lfs`` wants it;
    outside any working tree, relative to ``root`` (the model root) when given."""
    from .paths import git_toplevel, real_path, relative_path

    located = real_path(Path(path).parent) / Path(path).name
    top = git_toplevel(located.parent)
    if top is None and root is not None:
        top = real_path(root)
    return f'git lfs pull --include="{relative_path(located, top) if top else located.as_posix()}"'


class FileState(str, Enum):
    """What is at a path a voice needs, as every command names it (``voices``, ``verify``, the
    repairs and synthesis's ``require_content``)."""

    PRESENT = "present"
    LFS_POINTER = "lfs-pointer"
    MISSING = "missing"
    NOT_REGULAR = "not-regular"  # a FIFO, device, socket or directory where a file belongs
    UNREADABLE = "unreadable"  # there, but this user cannot read it (permissions, I/O error)
    OUTSIDE_ROOT = "outside-root"  # reached through a symlink that leaves the model root


@dataclass(frozen=True)
class FileProbe:
    """``state``; the pointer for LFS_POINTER; for the other states but PRESENT and MISSING,
    ``reason``: what is wrong, and ``fix`` (where one is known here), both without the path."""

    state: FileState
    pointer: LfsPointer | None = None
    reason: str = ""
    fix: str = ""


def probe(path: Path | None, root: Path | None = None, what: str = "file") -> FileProbe:
    """What is at ``path``: only a regular file is opened (non-blocking, so a FIFO cannot hang
    the caller) and only its first ``POINTER_MAX_BYTES`` are read. With ``root``, a path that a
    symlink leads out of the root is OUTSIDE_ROOT and is not opened at all."""
    from ..errors import one_line
    from ..fileio import NotReadable, open_regular
    from .paths import OUTSIDE_FIX, escaping_link, outside_reason

    if path is None:
        return FileProbe(FileState.MISSING)
    if root is not None and (link := escaping_link(root, path)) is not None:
        return FileProbe(FileState.OUTSIDE_ROOT, reason=outside_reason(link), fix=OUTSIDE_FIX)
    try:
        with open_regular(path, what) as handle:
            head = handle.read(POINTER_MAX_BYTES)
    except FileNotFoundError:
        return FileProbe(FileState.MISSING)
    except NotReadable as exc:
        return FileProbe(FileState.NOT_REGULAR, reason=exc.reason, fix=exc.fix)
    except (OSError, ValueError) as exc:
        return FileProbe(FileState.UNREADABLE, reason=f"cannot read {what} ({one_line(exc)})")
    pointer = parse_pointer(head)
    return FileProbe(FileState.LFS_POINTER, pointer) if pointer else FileProbe(FileState.PRESENT)


def require_content(path: Path, what: str) -> None:
    """Raise a one-line LavanyaError unless ``path`` is a readable regular file with real content
    (not missing, not a Git LFS pointer, not a FIFO or device)."""
    from ..errors import LavanyaError
    from ..fileio import format_size

    found = probe(path, what=what)
    if found.state is FileState.MISSING:
        raise LavanyaError(f"{path}: {what} is missing")
    if found.pointer is not None:
        raise LavanyaError(
            f"{path}: {what} is a Git LFS pointer ({format_size(found.pointer.size)} not downloaded); "
            f"run: {pull_command(path)}"
        )
    if found.state is not FileState.PRESENT:
        raise LavanyaError(f"{path}: {found.reason}" + (f"; {found.fix}" if found.fix else ""))
