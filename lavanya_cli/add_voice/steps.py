"""The checklist's steps, each a function returning its ✓ detail (or its Step) and raising
StepFailed with the fix: the place for the voice, the copy into a staging directory, the repairs
and checks made there with the functions ``fix-stats``, ``fix-config``, ``fix-perms`` and
``verify --deep`` use, the test sentence, and the move into ROOT and the final verify. The git
part (``.gitattributes``, the commit lines) is in ``git``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..checks.leftovers import Leftover, find_leftovers
from ..checks.problems import FIXED, REFUSED
from ..errors import LavanyaError, one_line
from ..fileio import CONFIG_MAX_BYTES, STATS_MAX_BYTES, VOCODER_CONFIG_MAX_BYTES, format_size, open_regular
from ..modeltree.config import STATS_ENTRIES, read_config, stats_file_entries
from ..modeltree.layout import (CONFIG_NAME, STATS_NAMES, VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME, WEIGHTS_NAME,
                                ModelRoot, VocoderSpec, VoiceSpec)
from ..modeltree.lfs_pointer import read_pointer
from ..modeltree.paths import relative_path
from .result import FAILED, OK, WARNING, Step, StepFailed
from .source import WEIGHTS_MAX_BYTES, SourceFiles, locate_source
from .staging import Stage, Undo, copy_into_stage, moved_in

_LISTED = 8  # characters named in the tokens step before "…"


def source_step(source: Path, weights: str | None) -> tuple[str, SourceFiles]:
    """The voice's files in SOURCE, and the step's detail: the layout found and what was taken."""
    files = locate_source(source, weights)
    stats = ", ".join(os.path.relpath(path, source) for path in files.stats.values())
    return f"{files.layout}; weights: {files.weights.name} ({files.weights_reason}); statistics: {stats}", files


def destination_step(root: Path, final: Path, replace_existing: bool) -> Step:
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


def copy_step(root: Path, final: Path, source: Path, files: SourceFiles, stages: list[Stage],
              origin: dict[Path, Path], language: str, gender: str, variant: str
              ) -> tuple[str, VoiceSpec, dict[str, Any]]:
    """Stage the voice's files under their model-root names; the step's detail, the staged
    voice (its vocoder where ROOT will have it) and its config. ``origin`` learns where each
    staged file came from, so later failures name the file in SOURCE."""
    stage = Stage(root, final, stages)
    model_dir = stage.staged  # made with the stage
    config_path = model_dir / CONFIG_NAME
    with open(os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as handle:
        handle.write(files.config_text.encode("utf-8"))
    origin[config_path] = source / CONFIG_NAME
    pairs = [(files.weights, model_dir / WEIGHTS_NAME, WEIGHTS_MAX_BYTES, "weights")]
    pairs += [(path, model_dir / STATS_NAMES[kind], STATS_MAX_BYTES, f"{kind} statistics")
              for kind, path in files.stats.items()]
    pairs += [(path, model_dir / path.name, CONFIG_MAX_BYTES, path.name) for path in files.extras]
    total = sum(copy_into_stage(src, dst, limit, what) for src, dst, limit, what in pairs)
    origin.update({dst: src for src, dst, _, _ in pairs})
    pointer = read_pointer(model_dir / WEIGHTS_NAME)
    if pointer is not None:
        raise StepFailed(f"{files.weights}: is a Git LFS pointer, not the weights ({format_size(pointer.size)} "
                         "not fetched)", "run git lfs pull in SOURCE's repository, then add the voice again",
                         files.weights)
    # the VoiceSpec ModelRoot gives a voice in this directory, its vocoder included
    voice = ModelRoot(root).voice_spec(language, gender, variant, model_dir)
    try:
        config = read_config(config_path)
    except LavanyaError as exc:
        raise StepFailed(exc.message, "restore the config the voice was trained with", config_path) from None
    return f"{len(pairs) + 1} files ({format_size(total)}) into {relative_path(stage.directory, root)}", voice, config


def stats_step(staged: VoiceSpec, config: dict[str, Any], origin: dict[Path, Path]) -> Step:
    from ..checks.stats import fix_stats
    from ..modeltree.stats import inspect_stats
    from ..speech.acoustic import output_dim

    fixed, failures = [], []
    try:
        n_mels = output_dim(config)
    except (TypeError, ValueError):
        n_mels = None  # the deep check names the broken setting
    for key in stats_file_entries(config):
        kind = STATS_ENTRIES[key]
        path = staged.stats_path(kind)
        outcome = fix_stats(path)
        if outcome.result == REFUSED:
            failures.append((origin.get(path, path), outcome.reason))
            continue
        if outcome.result == FIXED:
            fixed.append(path.name)
        check = inspect_stats(path, n_mels if kind == "feats" else 1)
        if not check.ok:
            failures.append((origin.get(path, path), check.detail))
    if failures:
        return Step("stats", FAILED, "; ".join(f"{path}: {why}" for path, why in failures),
                    "restore the statistics this voice was trained with (count, sum, sum_square as "
                    "plain arrays)", failures[0][0])
    detail = f"rewrote {', '.join(fixed)} from a pickle as plain arrays" if fixed else "already plain arrays"
    return Step("stats", OK, detail)


def config_step(staged: VoiceSpec, origin: dict[Path, Path]) -> Step:
    from ..checks.config_fix import fix_config

    outcome = fix_config(staged.config_path)
    source = origin.get(staged.config_path, staged.config_path)
    if outcome.result == REFUSED:
        return Step("config", FAILED, f"{source}: {outcome.reason}", "give every normaliser a stats_file "
                    "entry, as ESPnet writes them", source)
    if outcome.result == FIXED:
        return Step("config", OK, "stats_file entries set to feats_stats.npz, pitch_stats.npz, energy_stats.npz; "
                    "no other character changed")
    return Step("config", OK, "stats_file entries already bare file names")


def vocoder_step(root: Path, staged: VoiceSpec, config: dict[str, Any], vocoder_source: Path | None,
                  final_vocoder: VocoderSpec, stages: list[Stage]) -> tuple[Step, VoiceSpec]:
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
            stage = Stage(root, final_vocoder.directory, stages)
            for name, path in files.items():
                limit = VOCODER_CONFIG_MAX_BYTES if name == VOCODER_CONFIG_NAME else WEIGHTS_MAX_BYTES
                copy_into_stage(path, stage.staged / name, limit, f"vocoder {name}")
            staged = replace(staged, vocoder=VocoderSpec(stage.staged, final_vocoder.name))
            copied = f"copied from {vocoder_source} to {where} (staged); "
    elif not final_vocoder.directory.is_dir():
        raise StepFailed(f"{where} is missing", "pass --vocoder DIR with the HiFi-GAN (config.json and "
                         "generator) this voice was trained with", final_vocoder.directory)
    vocoder = staged.vocoder
    for path, what in ((vocoder.config_path, "vocoder config.json"), (vocoder.generator_path, "HiFi-GAN generator")):
        found = probe(path, what=what)
        shown = relative_path(final_vocoder.directory / path.name, root)
        if found.state is FileState.MISSING:
            raise StepFailed(f"{shown}: {what} is missing", "copy it from the vocoder's release, or pass "
                             "--vocoder DIR", path)
        if found.pointer is not None:
            raise StepFailed(f"{shown}: {what} is a Git LFS pointer ({format_size(found.pointer.size)} not fetched)",
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


def tokens_step(staged: VoiceSpec, config: dict[str, Any]) -> Step:
    """Characters the front-end produces but the token list lacks.

    A warning, not a failure, when they come from rarer words: the token list is fixed at
    training time (nothing the deployer does adds a character), upstream's own voices all lack
    a few (hindi: ള in 26 dictionary words), and lavanya's front-end substitutes the character
    map's entry or the base letter, or leaves the character out and names the word. A failure
    when the language's own number words cannot be said: that is a voice for another language
    or another front-end (a wrong --lang), and the test sentence could not be spoken.
    """
    from ..checks.speak_check import sentence_for_language
    from ..frontend import Frontend
    from ..frontend.characters import describe_origin, front_end_characters
    from ..frontend.kind import token_list

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
                    "ROOT: nothing to compare token_list with", "add the language's phone_dict and "
                    "numToText files (upstream ships them) so that its words and numbers can be spoken")
    known = set(tokens)
    missing = {char: where for char, where in sources.items() if char not in known}
    if not missing:
        return Step("tokens", OK, f"all {len(sources)} characters the {staged.language} front-end produces "
                    "are in token_list")
    ranked = sorted(missing.items(), key=lambda item: -sum(item[1].values()))
    listed = ", ".join(f"{char} (U+{ord(char):04X}, {describe_origin(where)})" for char, where in ranked[:_LISTED])
    more = f", and {len(ranked) - _LISTED} more" if len(ranked) > _LISTED else ""
    in_words = sum(1 for where in missing.values() if sum(where.values()))
    return Step("tokens", WARNING,
                f"{len(missing)} characters the {staged.language} front-end can produce are not in token_list "
                f"({in_words} in words of its dictionary or number table, {len(missing) - in_words} only in the "
                f"parser's output for rarer letters): {listed}{more}",
                "nothing to do unless these are common: lavanya speaks each as its character-map entry or "
                "base letter, or leaves it out and names the word (upstream's pipeline would feed <unk>); "
                "a voice trained with them needs a token list that has them")


def weights_step(staged: VoiceSpec, origin: dict[Path, Path]) -> Step:
    from ..checks.deep import generator_problem, weights_problem

    weights, generator = weights_problem(staged), generator_problem(staged.vocoder)
    problems = []
    if weights:
        problems.append((origin.get(staged.weights_path, staged.weights_path), weights[0]))
    if generator:
        problems.append((origin.get(staged.vocoder.generator_path, staged.vocoder.generator_path), generator[0]))
    if problems:
        raise StepFailed("; ".join(f"{path}: {why}" for path, why in problems),
                         "deploy the weights that belong to this config and vocoder", problems[0][0])
    return Step("weights", OK, "model.pth and the generator read without running their pickles, key by key "
                "and shape by shape as their configs describe")


def speak_step(staged: VoiceSpec) -> Step:
    from ..checks.speak_check import speak_voice
    from ..speech.options import ONNX, TORCH, LoadOptions, torch_installed

    # the reference where it is installed (the weights themselves, no export yet); else the
    # voice converted through the graph templates into the cache, as its first synthesis would
    check = speak_voice(staged, options=LoadOptions(engine=TORCH if torch_installed() else ONNX))
    if check.not_spoken:
        return Step("speak", WARNING, check.not_spoken, f"add numToText/{staged.language}.csv to ROOT")
    if check.problems:
        raise StepFailed(f"{check.summary()}: {'; '.join(what for what, _ in check.problems)}",
                         "listen to it with lavanya synth, and deploy the weights and vocoder that belong together")
    return Step("speak", OK, check.summary())


def tree_keeps_manifests(root: Path) -> bool:
    """Whether any voice or vocoder directory under ``root`` has an ``MD5SUMS``."""
    from ..checks.manifest import CHECKSUMS_NAME

    return any((directory / CHECKSUMS_NAME).is_file() for voice in ModelRoot(root).voices()
               for directory in (voice.model_dir, voice.vocoder.directory))


def manifest_step(stages: list[Stage]) -> str:
    from ..checks.manifest import write_manifest

    written = [write_manifest(stage.staged) for stage in stages]
    return f"wrote {len(written)} MD5SUMS (with sha256 and sizes), as verify --write-manifest does"


def permissions_step(stages: list[Stage]) -> str:
    from ..checks.permissions import apply_permissions, plan_permissions

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


def move_step(root: Path, stages: list[Stage], undo: Undo) -> str:
    try:
        for stage in stages:
            stage.install(undo)
    except OSError as exc:
        raise StepFailed(f"cannot move the voice into {relative_path(stage.final, root)} ({one_line(exc)})",
                         f"run as a user who may write to {stage.parent} and {stage.final}", stage.final) from None
    return ", ".join(relative_path(stage.final, root) for stage in stages) + " moved in"


def verify_step(root: Path, finals: list[Path]) -> str:
    from ..checks.verify import verify_root

    new = [relative_path(final, root) for final in finals]
    problems = [p for p in verify_root(root) if moved_in(p.path, new)]
    if problems:
        raise StepFailed("; ".join(p.line() for p in problems),
                         "fix those, then add the voice again", root / problems[0].path)
    return "no problems under " + ", ".join(new)
