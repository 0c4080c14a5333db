"""What an ``add-voice`` killed without its rollback (SIGKILL, a power cut) leaves in a model
tree: its staging directories, one of which may hold the voice ``--replace`` put aside. Both
``add-voice`` (which makes them, and refuses to add a voice over its own leftover) and ``verify``
(which reports them, with how to finish) read them here.
"""

from __future__ import annotations

import os
import shlex
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import LavanyaError
from ..fileio import read_regular
from ..modeltree.paths import relative_path

STAGING_PREFIX = ".lavanya-add-voice-"
ASIDE_NAME = "previous"
# In a staging directory: where its contents go, relative to the directory holding it (one line),
# so that what a killed run left can be explained (``find_leftovers``). Hidden: no unit is.
DESTINATION_FILE = ".destination"


@dataclass(frozen=True)
class Leftover:
    """A staging directory that an add-voice killed without its rollback (SIGKILL, a power
    cut) left in the tree: ``destination``, where its voice or vocoder was going (None when it
    does not say); ``previous``, whether it holds the voice ``--replace`` put aside;
    ``staged``, whether the staged copy is still in it (it was never moved in)."""

    directory: Path
    destination: Path | None
    previous: bool
    staged: bool

    def problem(self, root: Path) -> tuple[str, str]:
        """What it is and how to finish: (message, fix), paths relative to ``root`` in the
        message and as given in the commands."""
        here, q = self.directory, lambda path: shlex.quote(str(path))
        aside = here / ASIDE_NAME
        what = "an interrupted lavanya add-voice"
        first = "if no lavanya add-voice is running now: "
        if self.destination is None:
            if self.previous:
                return (f"{what} --replace: it holds the previous voice ({ASIDE_NAME}/) it put aside",
                        f"{first}if the voice it replaced in {q(here.parent)} is missing or incomplete, move "
                        f"{q(aside)} back in its place; once that voice passes lavanya verify --deep, rm -rf {q(here)}")
            return f"{what} left this staging directory", f"{first}look inside, then rm -rf {q(here)}"
        name, dest = relative_path(self.destination, root), self.destination
        there = os.path.lexists(dest)
        if self.previous and self.staged:
            if there:
                return (f"{what} --replace: it holds the previous voice of {name}, put aside before the new one "
                        f"was moved in, and something else is now at {name}",
                        f"{first}keep the voice you want at {q(dest)} (the old one is {q(aside)}), then "
                        f"rm -rf {q(here)}")
            return (f"{what} --replace: it holds the previous voice of {name}, put aside before the new one was "
                    f"moved in, so {name} is missing",
                    f"{first}put the old voice back with mv {q(aside)} {q(dest)}, then rm -rf {q(here)}")
        if self.previous:
            return (f"{what} --replace: it holds the previous voice of {name}, put aside when the new one was moved "
                    "in; the run ended before .gitattributes and the final verify",
                    f"{first}check the new voice with lavanya verify --deep; if it is incomplete, put the old one "
                    f"back with rm -rf {q(dest)} && mv {q(aside)} {q(dest)}; if it passes, run lavanya lfs-track "
                    f"--write; then rm -rf {q(here)}")
        if self.staged:
            return (f"{what}: a staged copy of {name} that was never moved in; nothing in the tree uses it",
                    f"{first}rm -rf {q(here)}, then add the voice again")
        if there:
            return (f"{what}: {name} may have been moved in from here, before .gitattributes and the final verify",
                    f"{first}check it with lavanya verify --deep (remove {q(dest)} if it is incomplete) and run "
                    f"lavanya lfs-track --write; then rm -rf {q(here)}")
        return f"{what} left this staging directory for {name}, with nothing in it", f"rm -rf {q(here)}"


def find_leftovers(directory: Path) -> list[Leftover]:
    """The staging directories right in ``directory`` (never through a link): a running
    add-voice's own, or what a killed one left."""
    try:
        with os.scandir(directory) as entries:
            found = sorted(Path(entry.path) for entry in entries
                           if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False))
    except OSError:
        return []
    return [_read_leftover(path) for path in found]


def _read_leftover(directory: Path) -> Leftover:
    """What ``directory`` says of itself: only its own regular ``.destination`` is read, and a
    destination outside the directory holding it is ignored."""
    destination = None
    marker = directory / DESTINATION_FILE
    try:
        if stat.S_ISREG(os.lstat(marker).st_mode):
            text = read_regular(marker, 4096, DESTINATION_FILE).decode("utf-8").removesuffix("\n")
            parts = Path(text).parts
            if text and not Path(text).is_absolute() and ".." not in parts and "\n" not in text:
                destination = directory.parent / text
    except (OSError, LavanyaError, UnicodeDecodeError):
        pass
    unit = None if destination is None else destination.relative_to(directory.parent).parts[0]
    previous = unit != ASIDE_NAME and _is_real_directory(directory / ASIDE_NAME)
    staged = unit is not None and os.path.lexists(directory / unit)
    return Leftover(directory, destination, previous, staged)


def _is_real_directory(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
