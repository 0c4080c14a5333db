"""Staging and undo: the voice is assembled in a hidden staging directory beside its final place
(the same filesystem, so moving it in is one rename), and every change made to ROOT after that
is recorded with the action that reverses it, so a failed step or an interrupt rolls ROOT back.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from ..checks.leftovers import ASIDE_NAME, DESTINATION_FILE, STAGING_PREFIX
from ..errors import one_line
from ..fileio import NotReadable, copy_regular
from .result import StepFailed


class Undo:
    """Changes made to ROOT, each with the action that reverses it, undone last first.

    An action is recorded before its change is made and must do nothing when the change did not
    happen, so that a signal between the two never leaves a change without its undo; an action
    leaves the log only once it ran, so a rollback cut short can run again. ``committed``: the
    point of no return has passed (a single assignment, so a signal sees it set or not).
    """

    def __init__(self) -> None:
        self._actions: list[tuple[str, Callable[[], None]]] = []
        self.committed = False

    def record(self, what: str, undo: Callable[[], None]) -> None:
        self._actions.append((what, undo))

    def rollback(self) -> list[str]:
        """Undo everything (nothing once committed); what could not be undone, one line each."""
        failures = []
        while self._actions and not self.committed:
            what, undo = self._actions[-1]
            try:
                undo()
            except OSError as exc:
                failures.append(f"could not undo {what} ({one_line(exc)})")
            self._actions.pop()
        return failures

    def forget(self) -> None:
        """The voice is in and verified: nothing is undone from here on."""
        self.committed = True
        self._actions.clear()


class Stage:
    """A hidden staging directory in the deepest existing directory on the way to ``final``.

    What moves in is the topmost directory that does not exist yet (``final`` itself when its
    parent exists), so that a new language or gender appears with one rename; an existing
    ``final`` (``--replace``) is first put aside inside the staging directory.

    The stage joins ``stages`` before its directory is made, under a name chosen beforehand
    (not ``mkdtemp``'s, known only once it exists), so that a stop at any moment finds it there
    and the cleanup removes it.
    """

    def __init__(self, root: Path, final: Path, stages: list[Stage]):
        self.final = final
        parent = final.parent
        while not os.path.lexists(parent):
            parent = parent.parent
        current = root
        for part in parent.relative_to(root).parts:  # ROOT itself may be a link the user named
            current = current / part
            if current.is_symlink() or not current.is_dir():
                raise StepFailed(f"{current} is a symlink or not a directory; add-voice writes only into real "
                                 "directories inside ROOT", "replace it by a directory, or pass the real "
                                 "root as --models", current)
        self.parent = parent
        self.top = parent / final.relative_to(parent).parts[0]
        self._name()
        stages.append(self)
        while True:
            try:
                os.mkdir(self.directory, 0o700)
                break
            except FileExistsError:
                self._name()
            except OSError as exc:
                raise StepFailed(f"cannot create a staging directory in {parent} ({one_line(exc)})",
                                 f"run as a user who may write to {parent}", parent) from None
        try:
            (self.directory / DESTINATION_FILE).write_text(final.relative_to(parent).as_posix() + "\n",
                                                            encoding="utf-8")
            self.staged.mkdir(parents=True)
        except OSError as exc:
            raise StepFailed(f"cannot write in the staging directory {self.directory} ({one_line(exc)})",
                             f"make room on the filesystem of {parent}", parent) from None

    def _name(self) -> None:
        self.directory = self.parent / f"{STAGING_PREFIX}{secrets.token_hex(6)}"
        self.staged = self.directory / self.final.relative_to(self.parent)
        self.unit = self.directory / self.top.relative_to(self.parent)

    def install(self, undo: Undo) -> None:
        """Move the staged directory in; an existing ``final`` goes aside first (``discard``
        removes it with the staging directory once everything passed). Each undo is recorded
        before its rename and checks whether the rename happened (see ``Undo``)."""
        aside = self.directory / ASIDE_NAME

        def put_back() -> None:
            if os.path.lexists(aside):  # only that rename makes it; fails if something took its place
                os.rename(aside, self.final)

        def move_out() -> None:
            if not os.path.lexists(self.unit):  # it was moved in
                os.rename(self.top, self.unit)

        if os.path.lexists(self.final):
            undo.record(f"putting {self.final} aside in {aside}", put_back)
            os.rename(self.final, aside)
        elif os.path.lexists(self.top):  # rename() would silently replace an empty directory
            raise FileExistsError(17, f"{self.top} appeared while the voice was being checked")
        undo.record(f"moving the voice to {self.top}", move_out)
        os.rename(self.unit, self.top)

    def holds_previous(self) -> bool:
        """Whether the voice ``--replace`` put aside is still in the staging directory."""
        return self.top.name != ASIDE_NAME and os.path.lexists(self.directory / ASIDE_NAME)

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def copy_into_stage(source: Path, target: Path, limit: int, what: str) -> int:
    """``fileio.copy_regular`` with its refusals as a failed step naming ``source``; the bytes
    copied."""
    try:
        return copy_regular(source, target, limit, what)
    except NotReadable as exc:
        raise StepFailed(f"{exc.path}: {exc.reason}", exc.fix, source) from None
    except OSError as exc:
        raise StepFailed(f"{source}: cannot copy ({one_line(exc)})", "make it readable", source) from None


def moved_in(path: str, directories: list[str]) -> bool:
    """Whether ``path`` (relative to ROOT) is one of ``directories`` (the ones moved in, relative
    to ROOT too) or inside one."""
    return any(path == directory or path.startswith(directory + "/") for directory in directories)
