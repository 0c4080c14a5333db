"""Where a path really is: inside the model root or not, whether it is a directory or a
regular file (asked without ever raising), how it is named relative to a root, and which git
working tree holds it.

A hostile tree can hold a symlinked voice directory that leads out of the root; a command that
followed it would read or rewrite someone else's files. Every reader and writer of a model tree
asks ``escaping_link`` before touching a path, so one rule decides for all of them: a path is
inside the root when, with every symlink resolved, it lies below the root's own resolved path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import FileError


def real_path(path: Path) -> Path:
    """``path`` with every symlink resolved; never raises (a loop is left unresolved, and any
    later open of it fails with ELOOP)."""
    return Path(os.path.realpath(path))


def escaping_link(root: Path, path: Path) -> Path | None:
    """The first part of ``path`` (a symlink, from ``root`` down) that leads out of ``root``, or
    None when ``path`` stays inside. A ``path`` not below ``root`` at all is returned as it is."""
    base = real_path(root)
    path = Path(path)
    if real_path(path).is_relative_to(base):
        return None
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return path
    current = Path(root)
    for part in parts:
        current = current / part
        if not real_path(current).is_relative_to(base):
            return current
    return path


def split_listing(directory: Path, root: Path) -> tuple[list[Path], list[Path]]:
    """The entries of ``directory`` (itself inside ``root``), sorted, as those that stay inside
    and the symlinks that lead out. Only symlinks are resolved, so a listing costs one
    ``scandir``; OSError when the directory cannot be listed."""
    base = real_path(root)
    with os.scandir(directory) as listing:
        entries = sorted(listing, key=lambda entry: entry.name)
    inside, leaving = [], []
    for entry in entries:
        path = Path(directory) / entry.name
        if entry.is_symlink() and not real_path(path).is_relative_to(base):
            leaving.append(path)
        else:
            inside.append(path)
    return inside, leaving


# The fix for a link out of the root, in every command's words.
OUTSIDE_FIX = "replace the link with a copy of what it points to, or remove it"


def outside_reason(link: Path) -> str:
    """What is wrong with a link out of the root (its fix is OUTSIDE_FIX)."""
    try:
        target = os.readlink(link)
        what = f"is a symlink to {target}"
    except OSError:
        what = f"leads to {real_path(link)}"
    return f"{what}, outside the model root; lavanya neither reads nor writes through it"


def require_inside(root: Path, path: Path) -> Path:
    """``path`` when, its links resolved, it stays inside ``root``; else the one-line FileError
    naming the link that leads out (nothing is read or written through it)."""
    link = escaping_link(root, path)
    if link is not None:
        raise FileError(link, outside_reason(link), OUTSIDE_FIX)
    return path


def relative_path(path: Path, root: Path) -> str:
    """``path`` as problems, tables and messages name it: relative to ``root`` (with ``/``), or
    as it is when it does not lie below ``root``."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def git_toplevel(path: Path) -> Path | None:
    """The git working tree that holds ``path``: the nearest directory, from ``path``'s real
    location upwards, with a ``.git`` entry (the directory, or the file a linked worktree or a
    submodule has). None outside any working tree."""
    for directory in (real_path(path), *real_path(path).parents):
        if exists(directory / ".git"):
            return directory
    return None


def is_directory(path: Path) -> bool:
    """``path`` is (or a symlink leads to) a directory; False on any error, never raises."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_regular(path: Path) -> bool:
    """``path`` is (or a symlink leads to) a regular file; False on any error, never raises."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def exists(path: Path) -> bool:
    """Something (even a dangling symlink or a FIFO) is at ``path``; never raises."""
    try:
        os.lstat(path)
        return True
    except (OSError, ValueError):
        return False
