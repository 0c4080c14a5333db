"""The one way the repairs replace a file in a model tree: inside the root, or not at all.

``fix-stats``, ``fix-config``, ``verify --write-manifest`` and ``lfs-track --write`` all write
through ``rewrite_file``: the file's real location (symlinks resolved) must lie inside the root
the user named, it must be a regular file (or not exist yet), and the write is the atomic
``replace_file``. A file with other hard links gets a new inode, so those other names (possibly
outside the tree) keep the old content: the note returned says so. Every failure, a read-only
directory included, is a ``Refused`` with a one-line reason and its fix, never an internal error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable

from ..errors import one_line
from ..fileio import REPLACE_FIX, file_kind, replace_file
from ..modeltree.paths import OUTSIDE_FIX, escaping_link, outside_reason, real_path


class Refused(Exception):
    """A file lavanya will not (or cannot) write: ``reason`` says why, ``fix`` what to do."""

    def __init__(self, reason: str, fix: str = ""):
        super().__init__(reason + (f"; {fix}" if fix else ""))
        self.reason = reason
        self.fix = fix


def writable_target(path: Path, root: Path | None = None) -> Path:
    """The real file that writing ``path`` replaces, checked to lie inside ``root`` (default: the
    directory ``path`` is named in) and to be a regular file or absent; Refused otherwise."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    link = escaping_link(root, path)
    if link is not None:
        raise Refused(f"{link} {outside_reason(link)}" if link != path else outside_reason(link), OUTSIDE_FIX)
    target = real_path(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise Refused(f"cannot read it ({one_line(exc)})") from None
    if not stat.S_ISREG(info.st_mode):
        raise Refused(f"it is {file_kind(info.st_mode)}, not a regular file", REPLACE_FIX)
    return target


def rewrite_file(path: Path, write: Callable[[BinaryIO], None], root: Path | None = None) -> str:
    """Replace ``path`` (its real location, see ``writable_target``) with what ``write`` writes.

    Returns a note for the user ("" when there is nothing to say): the target's other hard
    links, which keep the old content. Raises Refused when the file is outside ``root``, not a
    regular file, or cannot be written (a read-only directory, a full disk).
    """
    target = writable_target(path, root)
    try:
        links = os.stat(target).st_nlink
    except OSError:
        links = 1
    try:
        replace_file(target, write)
    except OSError as exc:
        raise Refused(f"cannot write {target.parent} ({one_line(exc)})", "make it writable, or run as the owner") from None
    if links > 1:
        others = links - 1
        return (f"it had {others} other hard link{'s' if others > 1 else ''}, which keep{'' if others > 1 else 's'} "
                "the old content")
    return ""
