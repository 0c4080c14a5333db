"""File permissions a deployed model tree needs: readable by the service, writable by nobody else."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def mode_problem(path: Path) -> str | None:
    """Why ``path``'s permissions are wrong for a model file or directory, or None when fine.

    Model files must be readable by owner, group and others (the service often runs as another
    user in a container) and never world-writable; directories must also be searchable.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot stat ({exc.strerror})"
    if mode & stat.S_IWOTH:
        return f"world-writable (mode {stat.S_IMODE(mode):03o})"
    needed = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    if stat.S_ISDIR(mode):
        needed |= stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    if mode & needed != needed:
        return f"not readable by everyone (mode {stat.S_IMODE(mode):03o})"
    if not os.access(path, os.R_OK):
        return "not readable by this user"
    return None
