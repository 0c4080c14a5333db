"""Walking a model tree the way every maintenance command does: symlinks never followed, no
hidden or venv dirs.

Symlinks are never followed, so a link that points out of the tree cannot drag another
directory into a listing or a ``chmod``; they are yielded so that a command can report one
that leads out of the root. Hidden directories (``.git``, caches) and Python
virtual environments are not part of a model tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import one_line
from .paths import real_path


def skipped_directory(entry: os.DirEntry) -> bool:
    """True for directories no maintenance command looks into."""
    return (
        entry.name.startswith(".")
        or entry.name == "__pycache__"
        or os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
    )


def walk_tree(root: Path, prune: frozenset[Path] = frozenset(),
              unreadable: list[tuple[Path, str]] | None = None) -> Iterator[tuple[Path, os.stat_result]]:
    """Yield ``(path, lstat)`` for ``root`` itself and every directory, regular file and symlink
    below it.

    ``root`` itself may be a symlink (the caller named it); below it, symlinks are yielded but
    never followed (the caller decides what a link means), sockets, FIFOs and devices are left
    out, and directories in ``prune`` (real paths, see ``paths.real_path``) are neither yielded nor entered. A
    directory that cannot be listed is added to ``unreadable`` with the reason.
    """
    root = Path(root)
    pending = [(root, os.stat(root))]
    while pending:
        path, info = pending.pop()
        yield path, info
        if not stat.S_ISDIR(info.st_mode):
            continue
        try:
            with os.scandir(path) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            if unreadable is not None:
                unreadable.append((path, f"cannot list this directory ({one_line(exc)})"))
            continue
        for entry in entries:
            try:
                child_info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            child = Path(entry.path)
            if stat.S_ISDIR(child_info.st_mode):
                if skipped_directory(entry) or real_path(child) in prune:
                    continue
            elif not (stat.S_ISREG(child_info.st_mode) or stat.S_ISLNK(child_info.st_mode)):
                continue
            pending.append((child, child_info))
