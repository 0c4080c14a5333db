"""Which files ``fix-stats`` and ``fix-config`` work on, from a mix of roots, directories and files.

Each target carries the root it must stay inside: the directory argument it was found under,
or, for a file named directly, the directory it is named in. A directory that cannot be listed
is a target too, already refused, so that it is reported rather than silently skipped.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from ..errors import LavanyaError, one_line
from ..modeltree.layout import CONFIG_NAME, STATS_NAMES, ModelRoot, VoiceSpec
from ..modeltree.paths import exists, is_directory


@dataclass(frozen=True)
class Target:
    """A file to fix, the root it must stay inside, and, when set, why it is refused unread and
    what to do about it."""

    path: Path
    root: Path
    refused: str = ""
    fix: str = ""


def stats_targets(paths: Iterable[Path]) -> list[Target]:
    """Every stats file of every voice under each directory, plus each file named directly."""
    return _expand(paths, lambda voice: list(voice.stats_paths.values()), STATS_NAMES.values())


def config_targets(paths: Iterable[Path]) -> list[Target]:
    """Every voice's ``config.yaml`` under each directory, plus each file named directly."""
    return _expand(paths, lambda voice: [voice.config_path], [CONFIG_NAME])


def _expand(paths: Iterable[Path], files_of: Callable[[VoiceSpec], list[Path]],
            names: Iterable[str]) -> list[Target]:
    found: dict[Path, Target] = {}
    for path in map(Path, paths):
        if is_directory(path):
            model_root = ModelRoot(path)
            voices = model_root.voices()
            # a model directory itself (config.yaml and stats, no voices below it)
            files = [f for v in voices for f in files_of(v)] or [path / n for n in names if exists(path / n)]
            if not files and not model_root.unreadable:
                raise LavanyaError(f"{path}: no voices or model files here; pass a model root, "
                                   "a model directory or files")
            for directory, reason in model_root.unreadable:
                found.setdefault(directory, Target(directory, path, f"{reason}; files in it are not checked",
                                                   f"make it readable (chmod 755 {shlex.quote(str(directory))})"))
            for file in files:
                found.setdefault(file, Target(file, path))
            continue
        try:
            os.lstat(path)
        except FileNotFoundError:
            raise LavanyaError(f"{path}: no such file or directory") from None
        except OSError as exc:
            found.setdefault(path, Target(path, path.parent, f"cannot reach it ({one_line(exc)})"))
            continue
        # a file, or a FIFO or device that the fix refuses with its reason
        found.setdefault(path, Target(path, path.parent))
    return list(found.values())
