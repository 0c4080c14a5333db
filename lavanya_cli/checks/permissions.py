"""File permissions a deployed model tree needs: readable by the service, writable by nobody else."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LavanyaError
from ..modeltree.walk import walk_tree


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


# Model files: read-only for the service, written only by their owner. Directories: searchable.
MODEL_FILE_MODE = 0o644
MODEL_DIR_MODE = 0o755
# Output directories a service writes into: owner and group write, setgid so files created there
# keep the directory's group (the service user and the deploying user share it); never others.
WRITABLE_DIR_MODE = 0o2775
WRITABLE_FILE_MODE = 0o664
_EXECUTE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


@dataclass(frozen=True)
class ModeChange:
    """One permission fix: ``old`` is None for a writable directory that does not exist yet."""

    path: Path
    old: int | None
    new: int

    def describe(self) -> str:
        if self.old is None:
            return f"{self.path}: create with mode {self.new:04o}"
        return f"{self.path}: {self.old:04o} -> {self.new:04o}"


def target_mode(info: os.stat_result, writable: bool) -> int:
    """The mode a model-tree entry should have.

    Files keep an owner-execute bit (a script shipped with the models stays runnable) but nothing
    else of their old mode: setuid, setgid, sticky and every write bit beyond the owner's (the
    group's too, in output directories) are dropped.
    """
    if stat.S_ISDIR(info.st_mode):
        return WRITABLE_DIR_MODE if writable else MODEL_DIR_MODE
    mode = WRITABLE_FILE_MODE if writable else MODEL_FILE_MODE
    if info.st_mode & stat.S_IXUSR:
        mode |= _EXECUTE
    return mode


def plan_permissions(root: Path, writable: Sequence[Path] = ()) -> list[ModeChange]:
    """Every change ``root`` and the ``writable`` directories need, without touching anything.

    Below ``root`` and each writable directory, symlinks are never followed; hidden directories
    and virtual environments are skipped. A writable directory inside ``root`` takes the
    writable modes for its whole subtree; a missing one is created.
    """
    root = Path(root)
    if not root.is_dir():
        raise LavanyaError(f"{root}: not a directory; pass the model root")
    tops = {root.resolve(): (root, False)}
    for directory in map(Path, writable):
        if directory.exists() and not directory.is_dir():
            raise LavanyaError(f"{directory}: --writable needs a directory, not a file")
        tops[directory.resolve()] = (directory, True)
    changes = []
    for resolved, (top, is_writable) in tops.items():
        if top.is_symlink():  # a top named by the user is followed; nothing below it is
            top = resolved
        if not top.exists():
            changes.append(ModeChange(top, None, WRITABLE_DIR_MODE))
        else:
            changes += _tree_changes(top, frozenset(tops.keys() - {resolved}), is_writable)
    return changes


def _tree_changes(top: Path, prune: frozenset[Path], writable: bool) -> list[ModeChange]:
    changes = []
    for path, info in walk_tree(top, prune):
        wanted = target_mode(info, writable)
        if stat.S_IMODE(info.st_mode) != wanted:
            changes.append(ModeChange(path, stat.S_IMODE(info.st_mode), wanted))
    return changes


def apply_permissions(changes: Sequence[ModeChange]) -> list[str]:
    """Carry out ``changes``; the failures, one line each (path, reason)."""
    failures = []
    for change in changes:
        try:
            if change.old is None:
                change.path.mkdir(parents=True, exist_ok=True)
            elif change.path.is_symlink():  # replaced by a link since planning: never chmod through it
                failures.append(f"{change.path}: became a symlink; not changed")
                continue
            os.chmod(change.path, change.new)
            actual = stat.S_IMODE(os.lstat(change.path).st_mode)
        except OSError as exc:
            failures.append(f"{change.path}: cannot change mode ({exc.strerror})")
            continue
        if actual != change.new:  # the kernel drops setgid for a group the user is not in
            failures.append(f"{change.path}: mode is {actual:04o}, wanted {change.new:04o} "
                            f"(run as the owner, or chgrp to a group you belong to)")
    return failures
