"""``lavanya add-voice``: the checklist for adding a language or gender to a model root, as one
command that either leaves a verified voice in the tree or leaves the tree as it was.

The voice is assembled in a hidden staging directory beside its final place (``staging``),
repaired and checked there and spoken once (``steps``), and only then renamed in. Every change
made to the tree after that (the rename, an old voice put aside by ``--replace``, the
``.gitattributes`` merge in ``git``) is recorded with its undo, so that a failed step or an
interrupt rolls the tree back; the old voice is deleted only once everything has passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import EXIT_USAGE, LavanyaError, Stopped, one_line
from ..modeltree.layout import GENDERS, LANGUAGE_ALIASES
from . import git, steps
from .result import FAILED, OK, SKIPPED, STEPS, AddVoiceResult, Step, StepFailed
from .staging import Stage, Undo

# Names are checked with fullmatch: ``$`` also matches before a final newline, and "hindi\n"
# would become a directory that lists as hindi.
_LANGUAGE = re.compile(r"[a-z][a-z0-9]*")
_VARIANT = re.compile(r"[a-z0-9]+")


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
        self.stages: list[Stage] = []
        self.undo = Undo()

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
    """The steps in order, each skipped with the reason once one it needs has failed. Steps are
    looked up on their modules when they run (``steps.move_step``), so a test can replace one."""
    result, stages = checklist.result, checklist.stages
    found: dict[str, Any] = {}

    def find() -> str:
        detail, found["files"] = steps.source_step(source, weights)
        return detail

    if not checklist.run("source", find):
        return checklist.skip_rest("not run: SOURCE holds no usable voice")
    checklist.run("destination", lambda: steps.destination_step(root, final, replace_existing))
    keeps_manifests = steps.tree_keeps_manifests(root)
    origin: dict[Path, Path] = {}  # each staged file -> the file in SOURCE, for the messages

    def copy() -> str:
        detail, found["voice"], found["config"] = steps.copy_step(root, final, source, found["files"], stages,
                                                                  origin, language, gender, variant)
        return detail

    if not checklist.run("copy", copy):
        return checklist.skip_rest("not run: the files could not be staged")
    config = found["config"]
    staged = found["voice"]
    checklist.run("stats", lambda: steps.stats_step(staged, config, origin))
    checklist.run("config", lambda: steps.config_step(staged, origin))

    def vocoder_check() -> Step:
        step, found["voice"] = steps.vocoder_step(root, staged, config, vocoder, staged.vocoder, stages)
        return step

    vocoder_fits = checklist.run("vocoder", vocoder_check)
    staged = found["voice"]
    checklist.run("tokens", lambda: steps.tokens_step(staged, config))
    if vocoder_fits:
        checklist.run("weights", lambda: steps.weights_step(staged, origin))
    if not result.ok:
        return checklist.skip_rest("not run: an earlier step failed")
    checklist.run("speak", lambda: steps.speak_step(staged))
    checklist.run("manifest", lambda: steps.manifest_step(stages) if keeps_manifests
                  else Step("manifest", SKIPPED, "the tree keeps no MD5SUMS"))
    checklist.run("permissions", lambda: steps.permissions_step(stages))
    finals = [stage.final for stage in stages]
    if not result.ok:
        return checklist.skip_rest("not run: an earlier step failed")
    if result.dry_run:
        result.git_commands = git.commit_commands(root, finals, result.voice)
        return checklist.skip_rest("dry run: nothing moved")
    for name, action in (("move", lambda: steps.move_step(root, stages, checklist.undo)),
                         ("lfs", lambda: git.lfs_step(root, finals, checklist.undo)),
                         ("verify", lambda: steps.verify_step(root, finals))):
        if not checklist.run(name, action):
            return checklist.skip_rest("not run: an earlier step failed")
    checklist.undo.forget()
    result.added = True
    result.git_commands = git.commit_commands(root, finals, result.voice)
