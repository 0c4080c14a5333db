"""Walking a model tree the way every maintenance command does: no symlinks, no hidden or venv dirs.

Symlinks are never followed, so a link that points out of the tree cannot drag another
directory into a listing or a ``chmod``. Hidden directories (``.git``, caches) and Python
virtual environments are not part of a model tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path


def skipped_directory(entry: os.DirEntry) -> bool:
    """True for directories no maintenance command looks into."""
    return (
        entry.name.startswith(".")
        or entry.name == "__pycache__"
        or os.path.exists(os.path.join(entry.path, "pyvenv.cfg"))
    )


def walk_tree(root: Path, prune: frozenset[Path] = frozenset()) -> Iterator[tuple[Path, os.stat_result]]:
    """Yield ``(path, lstat)`` for ``root`` itself, every directory and every regular file below it.

    ``root`` itself may be a symlink (the caller named it); below it, symlinks, sockets and
    devices are left out, and directories in ``prune`` (resolved paths) are neither yielded nor
    entered.
    """
    root = Path(root)
    pending = [(root, os.stat(root))]
    while pending:
        path, info = pending.pop()
        yield path, info
        if not stat.S_ISDIR(info.st_mode):
            continue
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            try:
                child_info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            child = Path(entry.path)
            if stat.S_ISDIR(child_info.st_mode):
                if skipped_directory(entry) or child.resolve() in prune:
                    continue
            elif not stat.S_ISREG(child_info.st_mode):
                continue
            pending.append((child, child_info))
