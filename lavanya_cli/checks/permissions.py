"""File permissions a deployed model tree needs: readable by the service, writable by nobody else."""

from __future__ import annotations

import os
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LavanyaError, one_line, option
from ..modeltree.paths import OUTSIDE_FIX, escaping_link, exists, is_directory, outside_reason, real_path
from ..modeltree.walk import walk_tree
from .problems import WARNING, Problem


def mode_problem(path: Path) -> str | None:
    """Why ``path``'s permissions are wrong for a model file or directory, or None when fine.

    Model files must be readable by owner, group and others (the service often runs as another
    user in a container) and never world-writable; directories must also be searchable.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot stat ({one_line(exc)})"
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


def permission_problem(path: Path) -> tuple[str, str] | None:
    """``verify``'s finding for a wrong mode, ``(problem, fix)``; the fix is what ``fix-perms``
    does with the same file (it keeps private files and files with hard links elsewhere)."""
    problem = mode_problem(path)
    if problem is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return problem, ""
    quoted = shlex.quote(str(path))
    if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
        return (f"{problem}; it has {info.st_nlink} hard links, and lavanya fix-perms changes it only "
                "when every one of them is inside the tree it fixes", f"chmod 644 {quoted} yourself if they are all yours")
    if _private(info):
        return (f"{problem}; it is private to its owner",
                f"if it is meant to be shared: lavanya fix-perms --loosen-private (or chmod 644 {quoted})")
    return problem, f"lavanya fix-perms (or chmod {755 if stat.S_ISDIR(info.st_mode) else 644} {quoted})"


def _private(info: os.stat_result) -> bool:
    """A regular file only its owner may use: fix-perms does not open it up unless asked."""
    return stat.S_ISREG(info.st_mode) and not info.st_mode & 0o077


# Model files: read-only for the service, written only by their owner. Directories: searchable.
MODEL_FILE_MODE = 0o644
MODEL_DIR_MODE = 0o755
# Output directories a service writes into: owner and group write, setgid so files created there
# keep the directory's group (the service user and the deploying user share it); never others.
# A sticky bit already there is kept: it stops group members deleting each other's files.
WRITABLE_DIR_MODE = 0o2775
WRITABLE_FILE_MODE = 0o664
_EXECUTE = stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
NOT_CHANGED = "not-changed"  # a change fix-perms planned but could not make


@dataclass(frozen=True)
class ModeChange:
    """One permission fix: ``old`` is None for a writable directory that does not exist yet;
    ``loosens`` says, in words, what the new mode allows that the old one did not."""

    path: Path
    old: int | None
    new: int
    loosens: str = ""

    @property
    def what(self) -> str:
        """The change in words: ``0600 -> 0644 (loosens: ...)``, ``create with mode 2775``."""
        if self.old is None:
            return f"create with mode {self.new:04o}"
        loosening = f" (loosens: {self.loosens})" if self.loosens else ""
        return f"{self.old:04o} -> {self.new:04o}{loosening}"

    def describe(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class PermissionPlan:
    """What ``fix-perms`` would do: ``changes`` to make; ``kept``, private files left private (no
    option asked to open them up); ``problems``, what it cannot fix: links out of the tree,
    files with hard links elsewhere, directories it cannot list (codes as verify names them)."""

    changes: list[ModeChange] = field(default_factory=list)
    kept: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def target_mode(info: os.stat_result, writable: bool) -> int:
    """The mode a model-tree entry should have.

    Files keep an owner-execute bit (a script shipped with the models stays runnable) but nothing
    else of their old mode: setuid, setgid, sticky and every write bit beyond the owner's (the
    group's too, in output directories) are dropped. Output directories keep a sticky bit.
    """
    if stat.S_ISDIR(info.st_mode):
        return (WRITABLE_DIR_MODE | (info.st_mode & stat.S_ISVTX)) if writable else MODEL_DIR_MODE
    mode = WRITABLE_FILE_MODE if writable else MODEL_FILE_MODE
    if info.st_mode & stat.S_IXUSR:
        mode |= _EXECUTE
    return mode


def loosening(old: int, new: int, is_dir: bool) -> str:
    """What ``new`` allows the group and others that ``old`` did not, in words ("" for none)."""
    verbs = ("list", "create and delete entries", "enter") if is_dir else ("read", "write", "execute")
    parts = []
    for who, shift in (("group", 3), ("others", 0)):
        gained = (new >> shift) & ~(old >> shift) & 0o7
        if gained:
            allowed = [verb for bit, verb in zip((4, 2, 1), verbs) if gained & bit]
            parts.append(f"{who} may now {' and '.join(allowed)}")
    return ", ".join(parts)


def plan_permissions(root: Path, writable: Sequence[Path] = (), *, loosen_private: bool = False) -> PermissionPlan:
    """Every change ``root`` and the ``writable`` directories need, without touching anything.

    Below ``root`` and each writable directory, symlinks are never followed (one that leads out
    of its tree is a problem); hidden directories and virtual environments are skipped. A
    writable directory inside ``root`` takes the writable modes for its whole subtree; a missing
    one is created. A regular file private to its owner (no group or other bits) is only ever
    tightened unless ``loosen_private``; a file with hard links outside the trees walked here is
    never changed, since a chmod would change those other names too.
    """
    root = Path(root)
    if not is_directory(root):
        raise LavanyaError(f"{root}: not a directory; pass the model root")
    tops = {real_path(root): (root, False)}
    for directory in map(Path, writable):
        if exists(directory) and not is_directory(directory):
            raise LavanyaError(f"{directory}: {option('writable')} needs a directory, not a file")
        tops[real_path(directory)] = (directory, True)
    plan = PermissionPlan()
    names_seen: dict[tuple[int, int], int] = {}
    for resolved, (top, is_writable) in tops.items():
        if os.path.islink(top):  # a top named by the user is followed; nothing below it is
            top = resolved
        if not exists(top):
            plan.changes.append(ModeChange(top, None, WRITABLE_DIR_MODE))
        else:
            _plan_tree(plan, top, frozenset(tops.keys() - {resolved}), is_writable, loosen_private, names_seen)
    _hold_back_hard_links(plan, names_seen)
    return plan


def _plan_tree(plan: PermissionPlan, top: Path, prune: frozenset[Path], writable: bool,
               loosen_private: bool, names_seen: dict[tuple[int, int], int]) -> None:
    unreadable: list[tuple[Path, str]] = []
    for path, info in walk_tree(top, prune, unreadable):
        if stat.S_ISLNK(info.st_mode):
            if (link := escaping_link(top, path)) is not None:
                plan.problems.append(Problem(str(link), "outside-root", outside_reason(link), OUTSIDE_FIX))
            continue
        if stat.S_ISREG(info.st_mode):
            key = (info.st_dev, info.st_ino)
            names_seen[key] = names_seen.get(key, 0) + 1
        old = stat.S_IMODE(info.st_mode)
        wanted = target_mode(info, writable)
        if _private(info) and not loosen_private and loosening(old, wanted, False):
            tightened = old & (wanted | 0o700)
            plan.kept.append(Problem(str(path), "private", f"mode {old:04o} is private to its owner; kept so",
                                     f"pass {option('loosen_private')} to make it {wanted:04o}", WARNING))
            wanted = tightened
        if old != wanted:
            plan.changes.append(ModeChange(path, old, wanted, loosening(old, wanted, stat.S_ISDIR(info.st_mode))))
    for directory, reason in unreadable:
        plan.problems.append(Problem(str(directory), "unreadable", f"{reason}; nothing in it was checked",
                                     "run fix-perms as its owner (or root)"))


def _hold_back_hard_links(plan: PermissionPlan, names_seen: dict[tuple[int, int], int]) -> None:
    """Move each change of a file with names outside the walked trees to the problems."""
    kept_changes = []
    for change in plan.changes:
        try:
            info = os.lstat(change.path) if change.old is not None else None
        except OSError:
            info = None
        seen = names_seen.get((info.st_dev, info.st_ino), 0) if info and stat.S_ISREG(info.st_mode) else 0
        if info is not None and stat.S_ISREG(info.st_mode) and info.st_nlink > seen:
            quoted = shlex.quote(str(change.path))
            plan.problems.append(Problem(
                str(change.path), "hard-links",
                f"has {info.st_nlink} hard links, {info.st_nlink - seen} of them outside this tree; "
                f"a chmod to {change.new:04o} would change those too, so it is left at {change.old:04o}",
                f"give it its own copy (cp -p {quoted} {quoted}.new && mv {quoted}.new {quoted}), then rerun"))
        else:
            kept_changes.append(change)
    plan.changes = kept_changes


def apply_permissions(changes: Sequence[ModeChange]) -> list[Problem]:
    """Carry out ``changes``; the failures (code ``not-changed``)."""
    failures = []
    for change in changes:
        try:
            if change.old is None:
                change.path.mkdir(parents=True, exist_ok=True)
            elif change.path.is_symlink():  # replaced by a link since planning: never chmod through it
                failures.append(Problem(str(change.path), NOT_CHANGED, "became a symlink; not changed",
                                        "check who replaced it, then rerun"))
                continue
            os.chmod(change.path, change.new)
            actual = stat.S_IMODE(os.lstat(change.path).st_mode)
        except OSError as exc:
            failures.append(Problem(str(change.path), NOT_CHANGED, f"cannot change mode ({one_line(exc)})",
                                    "run as the owner"))
            continue
        if actual != change.new:  # the kernel drops setgid for a group the user is not in
            failures.append(Problem(str(change.path), NOT_CHANGED, f"mode is {actual:04o}, wanted {change.new:04o}",
                                    "run as the owner, or chgrp to a group you belong to"))
    return failures
