"""Which files ``fix-stats`` and ``fix-config`` work on, from a mix of roots, directories and files."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from ..errors import LavanyaError
from ..modeltree.layout import CONFIG_NAME, STATS_NAMES, ModelRoot, VoiceSpec


def stats_targets(paths: Iterable[Path]) -> list[Path]:
    """Every stats file of every voice under each directory, plus each file named directly."""
    return _expand(paths, lambda voice: list(voice.stats_paths.values()), STATS_NAMES.values())


def config_targets(paths: Iterable[Path]) -> list[Path]:
    """Every voice's ``config.yaml`` under each directory, plus each file named directly."""
    return _expand(paths, lambda voice: [voice.config_path], [CONFIG_NAME])


def _expand(paths: Iterable[Path], files_of: Callable[[VoiceSpec], list[Path]],
            names: Iterable[str]) -> list[Path]:
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            voices = ModelRoot(path).voices()
            # a model directory itself (config.yaml and stats, no voices below it)
            files = [f for v in voices for f in files_of(v)] or [path / n for n in names if (path / n).exists()]
            if not files:
                raise LavanyaError(f"{path}: no voices or model files here; pass a model root, "
                                   "a model directory or files")
            found.update(dict.fromkeys(files))
        else:
            raise LavanyaError(f"{path}: no such file or directory")
    return list(found)
