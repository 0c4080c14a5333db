"""``lavanya add-voice``: the checklist for adding a language or gender to a model root, as one
command that either leaves a verified voice in the tree or leaves the tree as it was.

The voice is assembled in a hidden staging directory beside its final place (the same
filesystem, so moving it in is one rename), repaired and checked there with the functions
``fix-stats``, ``fix-config``, ``fix-perms`` and ``verify --deep`` use, spoken once, and only
then renamed in. Every change made to the tree after that (the rename, an old voice put aside by
``--replace``, the ``.gitattributes`` merge) is recorded with its undo, so that a failed step or
an interrupt rolls the tree back; the old voice is deleted only once everything has passed.

SOURCE is a directory holding the voice's files, or an ESPnet training directory
(``exp/tts_<name>/``) whose statistics sit under ``exp/tts_stats_*/train/``, where the config's
``stats_file`` paths point. Only regular files are read (a symlink to a device or a FIFO is
refused), each up to a size bound, and nothing is read from an absolute path a config names:
those are looked up below the training directory's ``exp/``.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import stat
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import EXIT_USAGE, LavanyaError, Stopped, one_line
from ..fileio import (CONFIG_MAX_BYTES, STATS_MAX_BYTES, VOCODER_CONFIG_MAX_BYTES, NotReadable, open_regular,
                      read_regular)
from ..modeltree.config import STATS_ENTRIES, load_yaml, read_config, stats_file_entries
from ..modeltree.layout import (CONFIG_NAME, GENDERS, LANGUAGE_ALIASES, STATS_NAMES, VOCODER_CONFIG_NAME,
                                VOCODER_WEIGHTS_NAME, WEIGHTS_NAME, ModelRoot, VocoderSpec, VoiceSpec)
from ..modeltree.lfs_pointer import parse_pointer, read_pointer
from ..modeltree.paths import relative_path
from .leftovers import ASIDE_NAME, DESTINATION_FILE, STAGING_PREFIX, Leftover, find_leftovers
from .problems import ERROR, FIXED, REFUSED, Problem
from .problems import WARNING as WARNING_LEVEL

# Step outcomes.
OK = "ok"
FAILED = "failed"
WARNING = "warning"
SKIPPED = "skipped"

# The checklist, in the order it runs, with what each step makes sure of.
STEPS = {
    "source": "find the voice's files in SOURCE",
    "destination": "a free place for the voice in ROOT",
    "copy": "copy the files into a staging directory beside it",
    "stats": "statistics are plain arrays (fix-stats)",
    "config": "stats_file entries are bare file names (fix-config)",
    "vocoder": "a vocoder that fits the voice",
    "tokens": "the front-end's characters are in token_list",
    "weights": "weights load with weights_only=True and fit their configs (verify --deep)",
    "speak": "a test sentence comes out as plausible audio",
    "manifest": "MD5SUMS beside the files, where the tree keeps them",
    "permissions": "files 644, directories 755 (fix-perms)",
    "move": "move the voice into ROOT",
    "lfs": ".gitattributes: weights in Git LFS, the rest in plain git (lfs-track --write)",
    "verify": "lavanya verify finds nothing wrong with the new voice",
}

# Real acoustic weights are about 150 MB and generators up to about 55 MB; a bound keeps a
# runaway file from filling the disk or, when loaded, the memory of a small host.
WEIGHTS_MAX_BYTES = 1 << 30
# ESPnet's recipes synthesise with this averaged checkpoint (tts.sh: inference_model=train.loss.ave.pth).
ESPNET_INFERENCE_MODEL = "train.loss.ave.pth"
TRAINING_STATE = "checkpoint.pth"  # ESPnet's resume file: model, optimisers and scheduler together
# Names are checked with fullmatch (or \Z): ``$`` also matches before a final newline, and
# "hindi\n" would become a directory that lists as hindi.
_AVERAGED = re.compile(r"\.ave(_\d+best)?\.pth\Z")
_EPOCH = re.compile(r"(\d+)epoch\.pth")
_LANGUAGE = re.compile(r"[a-z][a-z0-9]*")
_VARIANT = re.compile(r"[a-z0-9]+")
# Indic scripts sit in 128-code-point blocks from Devanagari (U+0900) to Malayalam (U+0D7F).
_INDIC = range(0x0900, 0x0D80)
_LISTED = 8  # characters named in the tokens step before "…"


@dataclass
class Step:
    """One checklist item: ``status`` is OK, FAILED, WARNING or SKIPPED; ``fix`` says what to do
    about a failure or warning; ``path`` names the file it is about, where there is one."""

    name: str
    status: str
    detail: str
    fix: str = ""
    path: Path | None = None

    @property
    def title(self) -> str:
        return STEPS[self.name]

    def problem(self) -> Problem | None:
        """A failed step as an error (code: the step's name), a warning as a warning; None for
        a step that passed or was skipped."""
        if self.status not in (FAILED, WARNING):
            return None
        return Problem("" if self.path is None else str(self.path), self.name, self.detail, self.fix,
                       ERROR if self.status == FAILED else WARNING_LEVEL)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "status": self.status, "detail": self.detail,
                "fix": self.fix, "path": None if self.path is None else str(self.path)}


@dataclass
class AddVoiceResult:
    """The checklist as it ran. ``added``: the voice is in ROOT and verified."""

    root: Path
    voice: str
    model_dir: Path
    dry_run: bool
    steps: list[Step] = field(default_factory=list)
    git_commands: list[str] = field(default_factory=list)
    added: bool = False
    left_changed: list[str] = field(default_factory=list)  # what the rollback could not undo

    @property
    def ok(self) -> bool:
        return not any(step.status == FAILED for step in self.steps)

    def where_it_stands(self) -> str:
        """Whether the voice is in, in words: what the line printed for a stop adds, since after
        the point of no return the voice stays."""
        if self.added:
            return f"{self.voice} was added to {self.root} and verified before the stop, and stays; commit it as usual"
        if self.left_changed:
            return f"{self.voice} not added, and rolling back left {self.root} changed: {'; '.join(self.left_changed)}"
        return f"{self.voice} not added; {self.root} is as it was"

    @property
    def problems(self) -> list[Problem]:
        """The failed steps and the warnings, as problems."""
        return [problem for step in self.steps if (problem := step.problem()) is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "added": self.added, "dry_run": self.dry_run, "voice": self.voice,
                "root": str(self.root), "model_dir": str(self.model_dir),
                "steps": [step.as_dict() for step in self.steps], "git_commands": self.git_commands}


class StepFailed(Exception):
    """A step's failure: what is wrong and the fix, for its ✗ line."""

    def __init__(self, detail: str, fix: str = "", path: Path | None = None):
        super().__init__(detail)
        self.detail, self.fix, self.path = detail, fix, path


# -- SOURCE ------------------------------------------------------------------------------------


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
    from ..speech.voice import SETTINGS_NAME  # lavanya.yaml: vocoder scaling that belongs to the voice

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


# -- staging and undo ------------------------------------------------------------------------


class _Undo:
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


class _Stage:
    """A hidden staging directory in the deepest existing directory on the way to ``final``.

    What moves in is the topmost directory that does not exist yet (``final`` itself when its
    parent exists), so that a new language or gender appears with one rename; an existing
    ``final`` (``--replace``) is first put aside inside the staging directory.

    The stage joins ``stages`` before its directory is made, under a name chosen beforehand
    (not ``mkdtemp``'s, known only once it exists), so that a stop at any moment finds it there
    and the cleanup removes it.
    """

    def __init__(self, root: Path, final: Path, stages: list[_Stage]):
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

    def install(self, undo: _Undo) -> None:
        """Move the staged directory in; an existing ``final`` goes aside first (``discard``
        removes it with the staging directory once everything passed). Each undo is recorded
        before its rename and checks whether the rename happened (see ``_Undo``)."""
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


def _copy_regular(source: Path, target: Path, limit: int, what: str) -> int:
    """Copy a regular file of at most ``limit`` bytes into a new file (mode 644); its size."""
    copied = 0
    try:
        with open_regular(source, what) as reader:
            if os.fstat(reader.fileno()).st_size > limit:
                raise StepFailed(f"{source}: {what} is larger than {limit >> 20} MiB, far beyond any real one",
                                 "replace it with the real file", source)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as writer:
                while chunk := reader.read(min(1 << 20, limit + 1 - copied)):
                    copied += len(chunk)
                    if copied > limit:
                        raise StepFailed(f"{source}: {what} grew beyond {limit >> 20} MiB while being copied",
                                         "copy it again once it is complete", source)
                    writer.write(chunk)
                writer.flush()
                os.fsync(writer.fileno())
    except NotReadable as exc:
        raise StepFailed(exc.message, "replace it with the real file", source) from None
    except OSError as exc:
        raise StepFailed(f"{source}: cannot copy ({one_line(exc)})", "make it readable", source) from None
    return copied


# -- the checks ---------------------------------------------------------------------------------


def _stats_step(staged: VoiceSpec, config: dict[str, Any], origin: dict[Path, Path]) -> Step:
    from ..speech.acoustic import output_dim
    from . import stats as stats_mod

    fixed, failures = [], []
    try:
        n_mels = output_dim(config)
    except (TypeError, ValueError):
        n_mels = None  # the deep check names the broken setting
    for key in stats_file_entries(config):
        kind = STATS_ENTRIES[key]
        path = staged.stats_path(kind)
        outcome = stats_mod.fix_stats(path)
        if outcome.result == REFUSED:
            failures.append((origin.get(path, path), outcome.reason))
            continue
        if outcome.result == FIXED:
            fixed.append(path.name)
        check = stats_mod.inspect_stats(path, n_mels if kind == "feats" else 1)
        if not check.ok:
            failures.append((origin.get(path, path), check.detail))
    if failures:
        return Step("stats", FAILED, "; ".join(f"{path}: {why}" for path, why in failures),
                    "restore the statistics this voice was trained with (count, sum, sum_square as "
                    "plain arrays)", failures[0][0])
    detail = f"rewrote {', '.join(fixed)} from a pickle as plain arrays" if fixed else "already plain arrays"
    return Step("stats", OK, detail)


def _config_step(staged: VoiceSpec, origin: dict[Path, Path]) -> Step:
    from .config_fix import fix_config

    outcome = fix_config(staged.config_path)
    source = origin.get(staged.config_path, staged.config_path)
    if outcome.result == REFUSED:
        return Step("config", FAILED, f"{source}: {outcome.reason}", "give every normaliser a stats_file "
                    "entry, as ESPnet writes them", source)
    if outcome.result == FIXED:
        return Step("config", OK, "stats_file entries set to feats_stats.npz, pitch_stats.npz, energy_stats.npz; "
                    "no other character changed")
    return Step("config", OK, "stats_file entries already bare file names")


def _vocoder_step(root: Path, staged: VoiceSpec, config: dict[str, Any], vocoder_source: Path | None,
                  final_vocoder: VocoderSpec, stages: list[_Stage]) -> tuple[Step, VoiceSpec]:
    """Check (and with ``vocoder_source``, stage) the voice's vocoder; the spec to check with."""
    from ..modeltree.lfs_pointer import FileState, probe
    from ..speech.vocoder import read_hifigan_config, vocoder_mismatches

    where = relative_path(final_vocoder.directory, root)
    copied = ""
    if vocoder_source is not None:
        files = {name: vocoder_source / name for name in (VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME)}
        if final_vocoder.directory.exists():
            if not all(_same_bytes(files[name], final_vocoder.directory / name) for name in files):
                users = [v.name for v in ModelRoot(root).voices() if v.vocoder.directory == final_vocoder.directory]
                raise StepFailed(f"{where} already holds another vocoder (used by {', '.join(users) or 'no voice'}); "
                                 "add-voice does not replace a vocoder other voices share",
                                 f"leave out --vocoder to use {where}, or replace it yourself if every voice "
                                 "using it was trained with the new one", final_vocoder.directory)
            copied = f"--vocoder {vocoder_source} is the one already at {where}; "
        else:
            stage = _Stage(root, final_vocoder.directory, stages)
            for name, path in files.items():
                limit = VOCODER_CONFIG_MAX_BYTES if name == VOCODER_CONFIG_NAME else WEIGHTS_MAX_BYTES
                _copy_regular(path, stage.staged / name, limit, f"vocoder {name}")
            staged = replace(staged, vocoder=VocoderSpec(stage.staged, final_vocoder.name))
            copied = f"copied from {vocoder_source} to {where} (staged); "
    elif not final_vocoder.directory.is_dir():
        raise StepFailed(f"{where} is missing", f"pass --vocoder DIR with the HiFi-GAN (config.json and "
                         "generator) this voice was trained with", final_vocoder.directory)
    vocoder = staged.vocoder
    for path, what in ((vocoder.config_path, "vocoder config.json"), (vocoder.generator_path, "HiFi-GAN generator")):
        found = probe(path, what=what)
        shown = relative_path(final_vocoder.directory / path.name, root)
        if found.state is FileState.MISSING:
            raise StepFailed(f"{shown}: {what} is missing", "copy it from the vocoder's release, or pass "
                             "--vocoder DIR", path)
        if found.pointer is not None:
            raise StepFailed(f"{shown}: {what} is a Git LFS pointer ({found.pointer.size / 1e6:.1f} MB not fetched)",
                             "run git lfs pull for it first", path)
        if found.state is not FileState.PRESENT:
            raise StepFailed(f"{shown}: {found.reason}", "copy the real file from the vocoder's release", path)
    try:
        differences = vocoder_mismatches(config, read_hifigan_config(vocoder.config_path))
    except LavanyaError as exc:
        raise StepFailed(exc.message, "restore the vocoder's config.json", vocoder.config_path) from None
    if differences:
        raise StepFailed(f"the voice does not fit {where} ({'; '.join(differences)})",
                         "pass --vocoder DIR with the vocoder this voice was trained with", vocoder.config_path)
    return Step("vocoder", OK, f"{copied}{where} fits (sample rate, mel bands, hop length)"), staged


def _same_bytes(a: Path, b: Path) -> bool:
    """Whether two regular files hold the same bytes (compared in chunks, never whole in memory)."""
    try:
        with open_regular(a) as left, open_regular(b) as right:
            if os.fstat(left.fileno()).st_size != os.fstat(right.fileno()).st_size:
                return False
            while True:
                chunk = left.read(1 << 20)
                if chunk != right.read(1 << 20):
                    return False
                if not chunk:
                    return True
    except (OSError, LavanyaError):
        return False


def front_end_characters(staged: VoiceSpec, config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Every character the voice's front-end can hand the acoustic model, with how many words
    of each source give it: the phone dictionary's values, the number words (through the
    voice's own front-end), and the unified parser's output for the language's script (each
    letter, and the script's KA with each sign; the source names the letters). Character voices
    speak the text itself, so for them the dictionary's words count instead of its phones.
    Spaces are left out: the voices were trained with them."""
    from ..frontend import Frontend, FrontendKind, detect_kind
    from .speak_check import read_phone_dictionary

    kind = detect_kind(config, staged.model_dir)
    frontend = Frontend(staged.language, staged.gender, kind, staged.root, variant=staged.variant)
    sources: dict[str, dict[str, int]] = {}

    def add(text: str, source: str) -> None:
        for char in set(text):
            if not char.isspace():
                counts = sources.setdefault(char, {})
                counts[source] = counts.get(source, 0) + 1

    words: list[str] = []
    if frontend.dictionary.exists:
        dictionary = read_phone_dictionary(frontend.dictionary.path)
        where = relative_path(frontend.dictionary.path, staged.root)
        for word, phones in dictionary.items():
            add(word if kind is FrontendKind.CHARACTERS else phones, where)
        words = list(dictionary)
    numbers = frontend.numbers
    if numbers is not None:
        number_words = list(numbers.words.values())
        for word in number_words:
            try:
                add(frontend.prepare(word).model_input, f"numToText/{staged.language}.csv")
            except LavanyaError:
                continue
        words += number_words
    if kind is not FrontendKind.CHARACTERS:
        block = _script_block(words)
        if block is not None:
            for char, letters in _parser_characters(block).items():
                sources.setdefault(char, {})["parser: " + " ".join(letters)] = 0
    return sources


def _script_block(words: list[str]) -> int | None:
    """The start of the Indic script block most of ``words``' letters are in."""
    counts: dict[int, int] = {}
    for word in words[:1000]:
        for char in word:
            if ord(char) in _INDIC and unicodedata.category(char).startswith("L"):
                counts[ord(char) & ~0x7F] = counts.get(ord(char) & ~0x7F, 0) + 1
    return max(counts, key=counts.get) if counts else None


@lru_cache(maxsize=16)
def _parser_characters(block: int) -> dict[str, tuple[str, ...]]:
    """Model characters the unified parser gives for a script: each letter alone and the
    script's KA with each vowel sign or mark (about 100 words, 0.1-2 s)."""
    from ..frontend.phones import parse_word

    chars = [chr(code) for code in range(block, block + 0x80)]
    letters = [c for c in chars if unicodedata.category(c) == "Lo"]
    signs = [c for c in chars if unicodedata.category(c) in ("Mn", "Mc")]
    ka = next((c for c in letters if unicodedata.name(c, "").endswith(" LETTER KA")), None)
    produced: dict[str, list[str]] = {}
    for word in letters + ([ka + sign for sign in signs] if ka else []):
        for char in parse_word(word) or "":
            if word not in produced.setdefault(char, []):
                produced[char].append(word)
    return {char: tuple(words) for char, words in produced.items()}


def _tokens_step(staged: VoiceSpec, config: dict[str, Any]) -> Step:
    """Characters the front-end produces but the token list lacks.

    A warning, not a failure, when they come from rarer words: the token list is fixed at
    training time (nothing the deployer does adds a character), upstream's own voices all lack
    a few (hindi: ള in 26 dictionary words), and lavanya's front-end substitutes the character
    map's entry or the base letter, or leaves the character out and names the word. A failure
    when the language's own number words cannot be said: that is a voice for another language
    or another front-end (a wrong --lang), and the test sentence could not be spoken.
    """
    from ..frontend import Frontend
    from ..frontend.kind import token_list
    from .speak_check import sentence_for_language

    tokens = token_list(config, staged.model_dir)
    if not tokens:
        raise StepFailed("the config has no token_list", "restore the config the voice was trained with",
                         staged.config_path)
    try:
        sources = front_end_characters(staged, config)
    except LavanyaError as exc:
        raise StepFailed(exc.message, "replace it with the real file from upstream") from None
    sentence = sentence_for_language(staged.root, staged.language)
    if sentence is not None:
        try:
            problems = Frontend.for_voice(staged, config).prepare(sentence).problems
        except LavanyaError as exc:
            problems = [exc.message]
        if problems:
            raise StepFailed(f"the voice cannot say the {staged.language} words {sentence!r}: "
                             f"{'; '.join(problems)}",
                             f"check --lang {staged.language}: this token list belongs to another language "
                             "or front-end", staged.config_path)
    if not sources:
        return Step("tokens", WARNING, f"no phone_dict/{staged.language} or numToText/{staged.language}.csv in "
                    "ROOT: nothing to compare token_list with", f"add the language's phone_dict and "
                    "numToText files (upstream ships them) so that its words and numbers can be spoken")
    known = set(tokens)
    missing = {char: where for char, where in sources.items() if char not in known}
    if not missing:
        return Step("tokens", OK, f"all {len(sources)} characters the {staged.language} front-end produces "
                    "are in token_list")
    ranked = sorted(missing.items(), key=lambda item: -sum(item[1].values()))
    listed = ", ".join(f"{char} (U+{ord(char):04X}, {_origin(where)})" for char, where in ranked[:_LISTED])
    more = f", and {len(ranked) - _LISTED} more" if len(ranked) > _LISTED else ""
    in_words = sum(1 for where in missing.values() if sum(where.values()))
    return Step("tokens", WARNING,
                f"{len(missing)} characters the {staged.language} front-end can produce are not in token_list "
                f"({in_words} in words of its dictionary or number table, {len(missing) - in_words} only in the "
                f"parser's output for rarer letters): {listed}{more}",
                "nothing to do unless these are common: lavanya speaks each as its character-map entry or "
                "base letter, or leaves it out and names the word (upstream's pipeline would feed <unk>); "
                "a voice trained with them needs a token list that has them")


def _origin(where: dict[str, int]) -> str:
    """``26 words of phone_dict/hindi; parser: ळ``: where a character comes from."""
    parts = []
    for source, count in where.items():
        if source.startswith("parser: "):
            letters = source.removeprefix("parser: ").split()
            parts.append(f"parser: {' '.join(letters[:3])}{' …' if len(letters) > 3 else ''}")
        else:
            parts.append(f"{count} word{'s' if count != 1 else ''} of {source}")
    return "; ".join(parts)


def _weights_step(staged: VoiceSpec, origin: dict[Path, Path]) -> Step:
    try:
        from .deep import generator_problem, weights_problem

        weights, generator = weights_problem(staged), generator_problem(staged.vocoder)
    except ModuleNotFoundError as exc:
        raise StepFailed(f"cannot check the weights: {exc.name} is not installed",
                         "install the torch engine: python3 -m pip install 'lavanya[torch]'") from None
    problems = []
    if weights:
        problems.append((origin.get(staged.weights_path, staged.weights_path), weights[0]))
    if generator:
        problems.append((origin.get(staged.vocoder.generator_path, staged.vocoder.generator_path), generator[0]))
    if problems:
        raise StepFailed("; ".join(f"{path}: {why}" for path, why in problems),
                         "deploy the weights that belong to this config and vocoder", problems[0][0])
    return Step("weights", OK, "model.pth and the generator load with torch.load(weights_only=True), key by key "
                "and shape by shape as their configs describe")


def _speak_step(staged: VoiceSpec) -> Step:
    from .speak_check import speak_voice

    check = speak_voice(staged, engine="torch")  # the reference: the weights themselves, no export yet
    if check.skipped:
        return Step("speak", WARNING, check.skipped, f"add numToText/{staged.language}.csv to ROOT")
    if check.problems:
        raise StepFailed(f"{check.summary()}: {'; '.join(what for what, _ in check.problems)}",
                         "listen to it with lavanya synth, and deploy the weights and vocoder that belong together")
    return Step("speak", OK, check.summary())


def _tree_keeps_manifests(root: Path) -> bool:
    """Whether any voice or vocoder directory under ``root`` has an ``MD5SUMS``."""
    from .manifest import MANIFEST_NAME

    return any((directory / MANIFEST_NAME).is_file() for voice in ModelRoot(root).voices()
               for directory in (voice.model_dir, voice.vocoder.directory))


# -- the whole checklist -----------------------------------------------------------------------


def check_names(language: str, gender: str, variant: str = "") -> tuple[str, str, str]:
    """``language``, ``gender`` and ``variant`` as directory names, or a usage error: they become
    paths under ROOT, so only plain lower-case names are accepted."""
    language = LANGUAGE_ALIASES.get(language.lower(), language.lower())
    if not _LANGUAGE.fullmatch(language):
        raise LavanyaError(f"--lang {language!r}: write the language as upstream names its directory: "
                           "lower-case letters and digits, starting with a letter (hindi, tamil, bodo)", EXIT_USAGE)
    if gender.lower() not in GENDERS:
        raise LavanyaError(f"--gender {gender!r}: one of {', '.join(GENDERS)}", EXIT_USAGE)
    if variant and not _VARIANT.fullmatch(variant):
        raise LavanyaError(f"--variant {variant!r}: lower-case letters and digits only (model_<variant>/)",
                           EXIT_USAGE)
    return language, gender.lower(), variant


def add_voice(source: Path, root: Path, language: str, gender: str, *, variant: str = "",
              vocoder: Path | None = None, replace_existing: bool = False, dry_run: bool = False,
              weights: str | None = None, on_step: Callable[[Step], None] | None = None) -> AddVoiceResult:
    """Run the checklist: the voice from ``source`` ends up at
    ``root/<language>/<gender>/model[_<variant>]`` checked and verified, or ``root`` is left as it
    was (also on an interrupt). ``on_step`` sees each step as it finishes.

    Usage errors (names, missing directories) raise LavanyaError with EXIT_USAGE before anything
    is touched; every other problem is a failed step in the result. An interrupt (``Stopped``,
    KeyboardInterrupt) is re-raised once ROOT is rolled back; a ``Stopped``'s message then says
    where the voice stands, since after the point of no return it is in and stays.
    """
    source, root = Path(source), Path(root)
    language, gender, variant = check_names(language, gender, variant)
    for path, what in ((source, "SOURCE"), (root, "ROOT"), (vocoder, "--vocoder")):
        if path is not None and not path.is_dir():
            raise LavanyaError(f"{path}: {what} is not a directory", EXIT_USAGE)
    final = root / language / gender / (f"model_{variant}" if variant else "model")
    name = f"{language}/{gender}" + (f" ({variant})" if variant else "")
    checklist = _Checklist(AddVoiceResult(root, name, final, dry_run), on_step)
    stop: BaseException | None = None
    try:
        _run(checklist, source, root, language, gender, variant, final, vocoder, replace_existing, weights)
    except (Stopped, KeyboardInterrupt) as exc:
        stop = exc
    except BaseException:
        _clean_up(checklist)
        raise
    failures, stop = _clean_up(checklist, stop)
    result = checklist.result
    result.added, result.left_changed = checklist.undo.committed and not failures, failures
    try:
        if failures:
            checklist.record(Step("move", FAILED, "rolling back left ROOT changed: " + "; ".join(failures),
                                  "put those paths back by hand (lavanya verify ROOT says how)"))
    except (Stopped, KeyboardInterrupt) as exc:
        stop = stop or exc
    if stop is not None:
        if isinstance(stop, Stopped):
            say_where_it_stands(stop, result)
        raise stop
    return result


def say_where_it_stands(stop: Stopped, result: AddVoiceResult) -> None:
    """Add to a stop's one line whether the voice is in (once: the CLI also calls this for a
    stop while it prints the result)."""
    if not getattr(stop, "add_voice_state", False):
        stop.add_voice_state = True
        stop.message = f"{stop.message}: {result.where_it_stands()}"
        stop.args = (stop.message,)


def _clean_up(checklist: _Checklist, stop: BaseException | None = None) -> tuple[list[str], BaseException | None]:
    """Roll ROOT back (unless the voice is committed) and remove the staging directories; a
    stop that arrives meanwhile (a second Ctrl-C outside the CLI, which ignores it) lets the
    cleanup finish first. A staging directory still holding the previous voice after a failed
    rollback is kept: it is the only copy. Returns what could not be undone, and the stop."""
    failures: list[str] = []
    while True:
        try:
            failures += checklist.undo.rollback()
            for stage in checklist.stages:
                if not (failures and stage.holds_previous()):
                    stage.discard()
            return failures, stop
        except (Stopped, KeyboardInterrupt) as exc:
            stop = stop or exc


class _Checklist:
    """The steps so far, the staging directories and the undo log of one run."""

    def __init__(self, result: AddVoiceResult, on_step: Callable[[Step], None] | None):
        self.result = result
        self.on_step = on_step
        self.stages: list[_Stage] = []
        self.undo = _Undo()

    def record(self, step: Step) -> None:
        self.result.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def run(self, name: str, action: Callable[[], Step | str]) -> bool:
        """Run one step (a returned string is its ✓ detail); False when it failed. A library's
        one-line error or a failed system call inside a step fails that step, not the command."""
        try:
            outcome = action()
        except StepFailed as failure:
            outcome = Step(name, FAILED, failure.detail, failure.fix, failure.path)
        except LavanyaError as exc:
            outcome = Step(name, FAILED, exc.message)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            outcome = Step(name, FAILED, f"{where}{one_line(exc)}")
        if isinstance(outcome, str):
            outcome = Step(name, OK, outcome)
        self.record(outcome)
        return outcome.status != FAILED

    def skip_rest(self, reason: str) -> None:
        done = {step.name for step in self.result.steps}
        for name in STEPS:
            if name not in done:
                self.record(Step(name, SKIPPED, reason))


def _run(checklist: _Checklist, source: Path, root: Path, language: str, gender: str, variant: str,
         final: Path, vocoder: Path | None, replace_existing: bool, weights: str | None) -> None:
    result, stages = checklist.result, checklist.stages
    found: dict[str, Any] = {}

    def find() -> str:
        found["files"] = files = locate_source(source, weights)
        stats = ", ".join(os.path.relpath(path, source) for path in files.stats.values())
        return f"{files.layout}; weights: {files.weights.name} ({files.weights_reason}); statistics: {stats}"

    if not checklist.run("source", find):
        return checklist.skip_rest("not run: SOURCE holds no usable voice")
    checklist.run("destination", lambda: _destination(root, final, replace_existing))
    keeps_manifests = _tree_keeps_manifests(root)
    origin: dict[Path, Path] = {}

    def copy() -> str:
        files: SourceFiles = found["files"]
        stage = _Stage(root, final, stages)
        model_dir = stage.staged  # made with the stage
        config_path = model_dir / CONFIG_NAME
        with open(os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as handle:
            handle.write(files.config_text.encode("utf-8"))
        origin[config_path] = source / CONFIG_NAME
        pairs = [(files.weights, model_dir / WEIGHTS_NAME, WEIGHTS_MAX_BYTES, "weights")]
        pairs += [(path, model_dir / STATS_NAMES[kind], STATS_MAX_BYTES, f"{kind} statistics")
                  for kind, path in files.stats.items()]
        pairs += [(path, model_dir / path.name, CONFIG_MAX_BYTES, path.name) for path in files.extras]
        total = sum(_copy_regular(src, dst, limit, what) for src, dst, limit, what in pairs)
        origin.update({dst: src for src, dst, _, _ in pairs})
        pointer = read_pointer(model_dir / WEIGHTS_NAME)
        if pointer is not None:
            raise StepFailed(f"{files.weights}: is a Git LFS pointer, not the weights ({pointer.size / 1e6:.1f} MB "
                             "not fetched)", "run git lfs pull in SOURCE's repository, then add the voice again",
                             files.weights)
        # the VoiceSpec ModelRoot gives a voice in this directory, its vocoder included
        found["voice"] = ModelRoot(root).voice_spec(language, gender, variant, model_dir)
        try:
            found["config"] = read_config(config_path)
        except LavanyaError as exc:
            raise StepFailed(exc.message, "restore the config the voice was trained with", config_path) from None
        return f"{len(pairs) + 1} files ({total / 1e6:.1f} MB) into {relative_path(stage.directory, root)}"

    if not checklist.run("copy", copy):
        return checklist.skip_rest("not run: the files could not be staged")
    config = found["config"]
    staged = found["voice"]
    checklist.run("stats", lambda: _stats_step(staged, config, origin))
    checklist.run("config", lambda: _config_step(staged, origin))

    def vocoder_check() -> Step:
        step, found["voice"] = _vocoder_step(root, staged, config, vocoder, staged.vocoder, stages)
        return step

    vocoder_fits = checklist.run("vocoder", vocoder_check)
    staged = found["voice"]
    checklist.run("tokens", lambda: _tokens_step(staged, config))
    if vocoder_fits:
        checklist.run("weights", lambda: _weights_step(staged, origin))
    if not result.ok:
        return checklist.skip_rest("not run: an earlier step failed")
    checklist.run("speak", lambda: _speak_step(staged))
    checklist.run("manifest", lambda: _manifests(stages) if keeps_manifests
                  else Step("manifest", SKIPPED, "the tree keeps no MD5SUMS"))
    checklist.run("permissions", lambda: _permissions(stages))
    finals = [stage.final for stage in stages]
    if not result.ok:
        return checklist.skip_rest("not run: an earlier step failed")
    if result.dry_run:
        result.git_commands = commit_commands(root, finals, result.voice)
        return checklist.skip_rest("dry run: nothing moved")
    for name, action in (("move", lambda: _move(root, stages, checklist.undo)),
                         ("lfs", lambda: _lfs(root, finals, checklist.undo)),
                         ("verify", lambda: _verify(root, finals))):
        if not checklist.run(name, action):
            return checklist.skip_rest("not run: an earlier step failed")
    checklist.undo.forget()
    result.added = True
    result.git_commands = commit_commands(root, finals, result.voice)


def _destination(root: Path, final: Path, replace_existing: bool) -> Step:
    where = relative_path(final, root)
    for leftover in _leftovers_of(root, final):
        message, fix = leftover.problem(root)
        raise StepFailed(f"{relative_path(leftover.directory, root)}: {message}", fix, leftover.directory)
    if not os.path.lexists(final):
        return Step("destination", OK, f"{where} is new")
    if final.is_symlink() or not final.is_dir():
        raise StepFailed(f"{where} exists and is not a directory", "move it out of the way", final)
    if not replace_existing:
        raise StepFailed(f"{where} already holds a voice", "pass --replace to swap it for the new one (the old "
                         "one is removed only after every step passed)", final)
    return Step("destination", OK, f"{where} exists and will be replaced: the old voice goes aside and is removed "
                "only after every step passed")


def _leftovers_of(root: Path, final: Path) -> list[Leftover]:
    """What a killed add-voice of the same voice left (or one running now): going ahead would
    stage over it, and with ``--replace`` put aside and then delete a voice that may be the half
    of a swap while the old one stays hidden. Leftovers of other voices are verify's to report."""
    found = []
    directory = final.parent
    while True:
        for leftover in find_leftovers(directory):
            if leftover.destination == final or (leftover.destination is None and leftover.previous
                                                 and directory == final.parent):
                found.append(leftover)
        if directory == root or directory == directory.parent:
            return found
        directory = directory.parent


def _manifests(stages: list[_Stage]) -> str:
    from .manifest import write_manifest

    written = [write_manifest(stage.staged) for stage in stages]
    return f"wrote {len(written)} MD5SUMS (with sha256 and sizes), as verify --write-manifest does"


def _permissions(stages: list[_Stage]) -> str:
    from .permissions import apply_permissions, plan_permissions

    # add-voice made these files itself, so a private mode on them is its own and may open up
    plans = [plan_permissions(stage.directory, loosen_private=True) for stage in stages]
    if problems := [problem for plan in plans for problem in plan.problems]:
        raise StepFailed("; ".join(f"{problem.path}: {problem.message}" for problem in problems),
                         "remove links and hard links from SOURCE")
    failures = apply_permissions([change for plan in plans for change in plan.changes])
    if failures:
        raise StepFailed("; ".join(f"{failure.path}: {failure.message}" for failure in failures),
                         "run as the owner of ROOT")
    return "staged files 644, directories 755"


def _move(root: Path, stages: list[_Stage], undo: _Undo) -> str:
    try:
        for stage in stages:
            stage.install(undo)
    except OSError as exc:
        raise StepFailed(f"cannot move the voice into {relative_path(stage.final, root)} ({one_line(exc)})",
                         f"run as a user who may write to {stage.parent} and {stage.final}", stage.final) from None
    return ", ".join(relative_path(stage.final, root) for stage in stages) + " moved in"


def _lfs(root: Path, finals: list[Path], undo: _Undo) -> Step:
    """``lfs-track --write`` for ROOT when it is in a git working tree (or already has a
    ``.gitattributes``), then the attributes git resolves for the new files checked."""
    from .gitattributes import ATTRIBUTES_FILE, check, open_git_tree, plan, write_attributes

    path = root / ATTRIBUTES_FILE
    if open_git_tree(root) is None and not path.exists():
        return Step("lfs", SKIPPED, "ROOT is not in a git repository and has no .gitattributes")
    new = [relative_path(final, root) for final in finals]
    try:
        previous = read_regular(path, CONFIG_MAX_BYTES, ATTRIBUTES_FILE) if path.exists() else None
        mode = path.stat().st_mode & 0o7777 if previous is not None else None
        result = plan(root)
        if write_attributes(result):
            undo.record(f"writing {path}", lambda: _restore(path, previous, mode))
            state = "updated"
        else:
            state = "already had the rules"
        problems = [p for p in check(result) if p.path == ATTRIBUTES_FILE or _under(p.path, new)]
    except LavanyaError as exc:
        raise StepFailed(exc.message, "make .gitattributes a readable text file", path) from None
    except OSError as exc:
        raise StepFailed(f"{path}: cannot write ({one_line(exc)})", "run as a user who may write it",
                         path) from None
    except Exception as exc:  # GitPython's GitCommandError: git refused (say, another user's repository)
        if type(exc).__module__.split(".")[0] != "git":
            raise
        raise StepFailed(f"git failed in {root}: {one_line(exc)}",
                         "run as the repository's owner", root) from None
    if problems:
        raise StepFailed("; ".join(p.line() for p in problems),
                         "remove the line or nested .gitattributes that overrides lavanya's rules", path)
    lfs = [rel for rel in result.in_lfs if _under(rel, new)]
    return Step("lfs", OK, f".gitattributes {state}: {', '.join(lfs) or 'no new file'} in LFS, the statistics "
                "and configs in plain git")


def _under(path: str, directories: list[str]) -> bool:
    return any(path == directory or path.startswith(directory + "/") for directory in directories)


def _restore(path: Path, previous: bytes | None, mode: int | None) -> None:
    from ..fileio import replace_file

    if previous is None:
        path.unlink(missing_ok=True)
    else:
        replace_file(path, lambda handle: handle.write(previous), mode=mode)


def _verify(root: Path, finals: list[Path]) -> str:
    from .verify import verify_root

    new = [relative_path(final, root) for final in finals]
    problems = [p for p in verify_root(root) if _under(p.path, new)]
    if problems:
        raise StepFailed("; ".join(p.line() for p in problems),
                         "fix those, then add the voice again", root / problems[0].path)
    return "no problems under " + ", ".join(new)


def commit_commands(root: Path, paths: list[Path], name: str) -> list[str]:
    """The git lines that commit the new voice, run from anywhere (``git -C REPO``); none when
    ROOT is not in a git working tree."""
    from .gitattributes import ATTRIBUTES_FILE, open_git_tree

    tree = open_git_tree(root)
    if tree is None:
        return []
    repo = Path(tree.repo.working_tree_dir)
    git = f"git -C {shlex.quote(str(repo))}"
    files = [tree.prefix + ATTRIBUTES_FILE] + [tree.prefix + relative_path(path, root) for path in paths]
    return [
        f"{git} lfs install --local",
        f"{git} add -A -- {' '.join(shlex.quote(f) for f in files)}",
        f"{git} lfs status",
        f"{git} commit -m {shlex.quote(f'Add the {name} voice (lavanya add-voice)')}",
    ]

