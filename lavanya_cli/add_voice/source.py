"""Reading SOURCE: the voice's config, weights and statistics in a plain directory or an ESPnet
training directory (``exp/tts_<name>/``, statistics under ``exp/tts_stats_*/train/``, where the
config's ``stats_file`` paths point).

Only regular files are read, each up to a size bound, and nothing is read from an absolute path
a config names: those are looked up below the training directory's ``exp/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import one_line
from ..fileio import CONFIG_MAX_BYTES, NotReadable, read_regular
from ..modeltree.config import STATS_ENTRIES, load_yaml, stats_file_entries
from ..modeltree.layout import CONFIG_NAME, STATS_NAMES, WEIGHTS_NAME
from ..modeltree.lfs_pointer import parse_pointer
from .result import StepFailed

# Real acoustic weights are about 150 MB and generators up to about 55 MB; a bound keeps a
# runaway file from filling the disk or, when loaded, the memory of a small host.
WEIGHTS_MAX_BYTES = 1 << 30
# ESPnet's recipes synthesise with this averaged checkpoint (tts.sh: inference_model=train.loss.ave.pth).
ESPNET_INFERENCE_MODEL = "train.loss.ave.pth"
TRAINING_STATE = "checkpoint.pth"  # ESPnet's resume file: model, optimisers and scheduler together
# Names are checked with fullmatch (or \Z): ``$`` also matches before a final newline.
_AVERAGED = re.compile(r"\.ave(_\d+best)?\.pth\Z")
_EPOCH = re.compile(r"(\d+)epoch\.pth")


@dataclass
class SourceFiles:
    """What was found in SOURCE: the config's text (read once), the weights and why they were
    taken, each kind of statistics, and optional extra files copied as they are."""

    layout: str  # "plain directory" or "ESPnet training directory"
    config_text: str
    config: dict[str, Any]
    weights: Path
    weights_reason: str
    stats: dict[str, Path]
    extras: list[Path] = field(default_factory=list)


def choose_weights(directory: Path, requested: str | None = None) -> tuple[Path, str]:
    """The weights file in ``directory`` and why it was taken (StepFailed when it is not clear).

    ``model.pth`` first (a voice already laid out); then ``train.loss.ave.pth``, the averaged
    checkpoint ESPnet's recipes synthesise with; then the one other averaged checkpoint; then
    the highest ``<N>epoch.pth``. Two different averaged checkpoints, or several unrecognised
    files, are refused: which one is the voice is the user's call (``--weights NAME``).
    """
    # Existing entries, devices and dangling links included: copying one says what it is.
    found = sorted((p for p in directory.iterdir() if p.name.endswith(".pth") and not p.is_dir()),
                   key=lambda p: p.name)
    names = ", ".join(p.name for p in found) or "none"
    if requested is not None:
        path = directory / requested
        if "/" in requested or requested in (".", "..") or not os.path.lexists(path) or path.is_dir():
            raise StepFailed(f"--weights {requested}: no such file in {directory}",
                             f"name one of the weights files there: {names}")
        return path, "named with --weights"
    by_name = {p.name: p for p in found}
    if WEIGHTS_NAME in by_name:
        return by_name[WEIGHTS_NAME], f"{WEIGHTS_NAME}, the name a model root uses"
    if ESPNET_INFERENCE_MODEL in by_name:
        return by_name[ESPNET_INFERENCE_MODEL], (f"{ESPNET_INFERENCE_MODEL}: the averaged checkpoint ESPnet's "
                                                 "recipes synthesise with")
    averaged = _distinct(p for p in found if _AVERAGED.search(p.name))
    if len(averaged) == 1:
        return averaged[0], f"{averaged[0].name}: the only averaged checkpoint"
    if len(averaged) > 1:
        raise StepFailed(f"several averaged checkpoints ({', '.join(p.name for p in averaged)}) and no "
                         f"{ESPNET_INFERENCE_MODEL}: which one is the voice is not clear",
                         "pass --weights NAME with the one to deploy", directory)
    epochs = [(int(match.group(1)), p) for p in found if (match := _EPOCH.fullmatch(p.name))]
    if epochs:
        epoch, path = max(epochs)
        return path, f"{path.name}: the highest epoch ({epoch}); no averaged checkpoint"
    others = _distinct(p for p in found if p.name != TRAINING_STATE)
    if len(others) == 1:
        return others[0], f"{others[0].name}: the only weights file"
    if not found:
        raise StepFailed(f"no weights (*.pth) in {directory}",
                         f"copy the voice's {WEIGHTS_NAME} (or ESPnet's {ESPNET_INFERENCE_MODEL}) there", directory)
    why = (f"{TRAINING_STATE} is ESPnet's training state (model and optimisers), not the voice's weights"
           if not others else f"cannot tell which of {names} is the voice")
    raise StepFailed(why, "pass --weights NAME with the file to deploy", directory)


def _distinct(paths) -> list[Path]:
    """One path per file (ESPnet links ``valid.loss.ave.pth`` to ``valid.loss.ave_5best.pth``),
    keeping a regular file's own name over a link's."""
    chosen: dict[str, Path] = {}
    for path in paths:
        key = os.path.realpath(path)
        if key not in chosen or chosen[key].is_symlink():
            chosen[key] = path
    return sorted(chosen.values(), key=lambda p: p.name)


def locate_source(source: Path, weights: str | None = None) -> SourceFiles:
    """The voice's files in ``source`` (StepFailed naming what is missing and where it looked)."""
    config_path = source / CONFIG_NAME
    if not config_path.exists():
        nested = sorted(str(p.parent) for p in (*source.glob(f"*/{CONFIG_NAME}"), *source.glob(f"exp/*/{CONFIG_NAME}")))
        hint = f"; training directories below it: {', '.join(nested)}" if nested else ""
        raise StepFailed(f"no {CONFIG_NAME} in {source}{hint}",
                         f"pass the directory holding {CONFIG_NAME}, the weights and the statistics "
                         "(for an ESPnet run: exp/tts_<name>/)", source)
    try:
        raw = read_regular(config_path, CONFIG_MAX_BYTES, CONFIG_NAME)
    except NotReadable as exc:
        raise StepFailed(exc.message, "replace it with the voice's config.yaml", config_path) from None
    except OSError as exc:
        raise StepFailed(f"{config_path}: cannot read ({one_line(exc)})", "make it readable", config_path) from None
    if parse_pointer(raw) is not None:
        raise StepFailed(f"{config_path}: is a Git LFS pointer, not the config",
                         "run git lfs pull in SOURCE's repository first", config_path)
    try:
        text = raw.decode("utf-8")
        config = load_yaml(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise StepFailed(f"{config_path}: does not parse ({one_line(exc)})", "restore the config the voice was "
                         "trained with", config_path) from None
    if not isinstance(config, dict):
        raise StepFailed(f"{config_path}: is not a mapping of ESPnet settings",
                         "restore the config the voice was trained with", config_path)
    weights_path, reason = choose_weights(source, weights)
    stats: dict[str, Path] = {}
    missing = []
    espnet = weights_path.name != WEIGHTS_NAME
    for key, value in stats_file_entries(config).items():
        kind = STATS_ENTRIES[key]
        candidates = _stats_candidates(source, kind, value)
        found = next((path for path in candidates if os.path.lexists(path)), None)
        if found is None:
            missing.append(f"{key}.stats_file {value!r} (looked at {', '.join(map(str, candidates))})")
        else:
            stats[kind] = found
            espnet = espnet or found.parent != source
    if missing:
        raise StepFailed("statistics not found: " + "; ".join(missing),
                         f"copy {', '.join(STATS_NAMES.values())} beside {CONFIG_NAME}", source)
    from ..speech.voice_files import SETTINGS_NAME  # lavanya.yaml: vocoder scaling that belongs to the voice

    extras = [source / SETTINGS_NAME] if os.path.lexists(source / SETTINGS_NAME) else []
    layout = "ESPnet training directory" if espnet else "plain directory"
    return SourceFiles(layout, text, config, weights_path, reason, stats, extras)


def _stats_candidates(source: Path, kind: str, value: Any) -> list[Path]:
    """Where one kind of statistics may be: beside the config under its usual name or the
    config's file name, or, for a path through ``exp/``, below the training directory's parent
    (``exp/tts_stats_raw_char_None/train/feats_stats.npz`` as ESPnet's recipes write it).
    An absolute path elsewhere on this machine is never read."""
    candidates = [source / STATS_NAMES[kind]]
    if isinstance(value, str) and value:
        parts = Path(value).parts
        if parts[-1] not in ("..", ".") and source / parts[-1] not in candidates:
            candidates.append(source / parts[-1])
        if "exp" in parts:
            tail = parts[len(parts) - parts[::-1].index("exp"):]
            if tail and ".." not in tail:
                candidates.append(source.parent.joinpath(*tail))
    return candidates

