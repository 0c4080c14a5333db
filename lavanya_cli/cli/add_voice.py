"""``lavanya add-voice``: the checklist for adding a language or gender, as one command."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, LavanyaError
from .app import ModelsOption, app
from .output import print_json, stdout
from .verify import _escape_data, _escape_property

MARKS = {"ok": "✓", "failed": "✗", "warning": "!", "skipped": "-"}
_NAME_WIDTH = 12


class AddVoiceFormat(str, Enum):
    text = "text"
    json = "json"
    github = "github"


@app.command("add-voice")
def add_voice(
    source: Path = typer.Argument(..., metavar="SOURCE", file_okay=False,
                                  help="Directory with config.yaml, the weights and the three *_stats.npz, "
                                  "or an ESPnet training directory (exp/tts_<name>/)."),
    lang: str = typer.Option(..., "--lang", help="Language, as its directory is named (hindi, tamil, ...)."),
    gender: str = typer.Option(..., "--gender", help="male or female."),
    models: Optional[Path] = ModelsOption,
    variant: str = typer.Option("", "--variant", help="Put the voice in model_<VARIANT>/ beside model/."),
    vocoder: Optional[Path] = typer.Option(None, "--vocoder", file_okay=False, help="HiFi-GAN directory "
                                           "(config.json, generator) to copy into the layout for this voice."),
    weights: Optional[str] = typer.Option(None, "--weights", help="The *.pth in SOURCE to deploy, where "
                                          "several could be the voice."),
    replace: bool = typer.Option(False, "--replace", help="Swap an existing voice for the new one; the old "
                                 "one is removed only after every step passed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Every check on a staged copy; move nothing."),
    format: AddVoiceFormat = typer.Option(AddVoiceFormat.text, "--format",
                                          help="text, json, or github (workflow annotations)."),
) -> None:
    """Add a voice: stage, repair and check its files, speak a test sentence, move it in.

    Either a verified voice ends up in ROOT, or ROOT is left as it was. Exit status 0 when the
    voice is in and verified (or, with --dry-run, would be), 1 when a step failed, 2 on usage
    errors.
    """
    from ..checks.add_voice import add_voice as run_checklist
    from ..modeltree.layout import ModelRoot, resolve_root

    root = resolve_root(models)
    if models is None and ModelRoot(root).bundled:
        raise LavanyaError(f"{root}: the demo tree bundled with lavanya; name the tree the voice goes into "
                           "with --models ROOT (or $LAVANYA_MODELS)", EXIT_USAGE)
    text = format is AddVoiceFormat.text
    printer = _StepPrinter()
    on_step = printer.step if text else None
    if text:
        stdout.print(f"lavanya add-voice: {source} -> {root}", markup=False, soft_wrap=True)
    # Libraries print notices on stdout; only the JSON document or the annotations may go there.
    quiet = contextlib.nullcontext() if text else contextlib.redirect_stdout(sys.stderr)
    with _terminate_as_interrupt(), quiet:
        result = run_checklist(source, root, lang, gender, variant=variant, vocoder=vocoder,
                               replace_existing=replace, dry_run=dry_run, weights=weights, on_step=on_step)
    if format is AddVoiceFormat.json:
        print_json(result.as_dict())
    elif format is AddVoiceFormat.github:
        for step in result.steps:
            if step.status in ("failed", "warning"):
                print(github_annotation(step))
    else:
        printer.flush()
        _print_summary(result)
    raise typer.Exit(EXIT_OK if result.ok else EXIT_PROBLEMS)


class _StepPrinter:
    """Prints each step as it finishes; steps skipped for one reason share a line."""

    def __init__(self) -> None:
        self.skipped: list = []

    def step(self, step) -> None:
        if step.status == "skipped":
            if self.skipped and self.skipped[-1].detail != step.detail:
                self.flush()
            self.skipped.append(step)
            return
        self.flush()
        self._line(MARKS[step.status], step.name, step.detail)
        if step.fix and step.status in ("failed", "warning"):
            self._line(" ", "", f"fix: {step.fix}")

    def flush(self) -> None:
        if self.skipped:
            names = ", ".join(step.name for step in self.skipped)
            self._line(MARKS["skipped"], names, self.skipped[0].detail)
            self.skipped = []

    @staticmethod
    def _line(mark: str, name: str, text: str) -> None:
        stdout.print(f"{mark} {name:<{_NAME_WIDTH}} {text}", markup=False, soft_wrap=True)


def _print_summary(result) -> None:
    failed = [step for step in result.steps if step.status == "failed"]
    if failed:
        line = f"{result.voice} not added: {len(failed)} step(s) failed; {result.root} is unchanged"
    elif result.dry_run:
        line = f"dry run: {result.voice} passed every check on the staged copy; nothing was moved"
    else:
        line = f"{result.voice} added to {result.root} and verified"
    stdout.print(line, markup=False, soft_wrap=True)
    if failed:
        return
    if not result.git_commands:
        stdout.print(f"{result.root} is not in a git repository: nothing to commit", markup=False, soft_wrap=True)
        return
    stdout.print("after a real run, commit it with:" if result.dry_run else "commit it with:", markup=False)
    notes = ["# once per clone: without it git add stores the weights as plain blobs", "",
             "# model.pth (and a new generator) must show as LFS, not Git", ""]
    for command, note in zip(result.git_commands, notes):
        stdout.print(f"  {command}" + (f"   {note}" if note else ""), markup=False, soft_wrap=True)


def github_annotation(step) -> str:
    """A GitHub Actions ``::error`` (failed step) or ``::warning`` line, attached to the step's
    file where it has one inside the workspace."""
    kind = "error" if step.status == "failed" else "warning"
    properties = []
    if step.path is not None:
        base = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
        path = os.path.relpath(os.path.abspath(step.path), base)
        if not path.startswith(".."):
            properties.append(f"file={_escape_property(Path(path).as_posix())}")
    properties.append(f"title={_escape_property(f'lavanya add-voice: {step.name}')}")
    message = step.detail + (f"; fix: {step.fix}" if step.fix else "")
    return f"::{kind} {','.join(properties)}::{_escape_data(message)}"


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (a container stopping, a CI timeout) raises KeyboardInterrupt, so the checklist
    rolls ROOT back instead of the process dying with the voice half moved."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
