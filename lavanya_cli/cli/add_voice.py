"""``lavanya add-voice``: the checklist for adding a language or gender, as one command."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_USAGE, LavanyaError, Stopped
from .app import app
from .options import CheckFormatOption, ModelsOption, gender_option, lang_option, variant_option
from ..checks.problems import WARNING
from .output import Output, OutputFormat, Result, counted

MARKS = {"ok": "✓", "failed": "✗", "warning": "!", "skipped": "-"}
_NAME_WIDTH = 12


@app.command("add-voice")
def add_voice(
    source: Path = typer.Argument(..., metavar="SOURCE", file_okay=False,
                                  help="Directory with config.yaml, the weights and the three *_stats.npz, "
                                  "or an ESPnet training directory (exp/tts_<name>/)."),
    lang: str = lang_option(),
    gender: str = gender_option(),
    models: Optional[Path] = ModelsOption,
    variant: str = variant_option(""),
    vocoder: Optional[Path] = typer.Option(None, "--vocoder", file_okay=False, help="HiFi-GAN directory "
                                           "(config.json, generator) to copy into the layout for this voice."),
    weights: Optional[str] = typer.Option(None, "--weights", help="The *.pth in SOURCE to deploy, where "
                                          "several could be the voice."),
    replace: bool = typer.Option(False, "--replace", help="Swap an existing voice for the new one; the old "
                                 "one is removed only after every step passed."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Every check on a staged copy; move nothing."),
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Add a voice: stage, repair and check its files, speak a test sentence, move it in.

    Either a verified voice ends up in ROOT, or ROOT is left as it was. With --variant V the
    voice goes into model_V/ beside model/. Exit status 0 when the voice is in and verified (or,
    with --dry-run, would be), 1 when a step failed, 2 on usage errors. SIGINT or SIGTERM
    rolls ROOT back and exits 130 or 143 with one line saying where the voice stands.
    """
    from ..add_voice import add_voice as run_checklist
    from ..add_voice import check_names, say_where_it_stands
    from ..modeltree.layout import ModelRoot, resolve_root

    check_names(lang, gender, variant)  # a bad name is one line, before any output
    root = resolve_root(models)
    if models is None and ModelRoot(root).bundled:
        raise LavanyaError(f"{root}: the demo tree bundled with lavanya; name the tree the voice goes into "
                           "with --models ROOT (or $LAVANYA_MODELS)", EXIT_USAGE)
    out = Output(format, "add-voice")
    printer = _StepPrinter(out)
    out.progress(f"lavanya add-voice: {source} -> {root}")
    # SIGINT and SIGTERM arrive as ``Stopped`` (cli.main): the checklist rolls ROOT back and
    # says in the stop's message where the voice stands; main prints it and exits 130 or 143.
    with out.own_stdout():  # libraries print notices on stdout
        result = run_checklist(source, root, lang, gender, variant=variant, vocoder=vocoder,
                               replace_existing=replace, dry_run=dry_run, weights=weights,
                               on_step=printer.step if out.live else None)
    try:
        printer.flush()
        problems = result.problems
        out.finish(Result(
            data=result.as_dict(),
            problems=[problem for problem in problems if problem.level != WARNING],
            warnings=[problem for problem in problems if problem.level == WARNING],
            summary=_summary(result), shown_live=True,
        ))
    except Stopped as stop:  # the voice may be in: the line says so
        say_where_it_stands(stop, result)
        raise


class _StepPrinter:
    """Shows each step as it finishes (``Output.progress``); steps skipped for one reason share
    a line."""

    def __init__(self, out: Output) -> None:
        self.out = out
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

    def _line(self, mark: str, name: str, text: str) -> None:
        self.out.progress(f"{mark} {name:<{_NAME_WIDTH}} {text}")


def _summary(result) -> list[str]:
    """What the run came to, and the git commands that commit the voice."""
    failed = [step for step in result.steps if step.status == "failed"]
    steps = f"{counted(len(failed), 'step')} failed"
    if failed and result.left_changed:
        return [f"{result.voice} not added: {steps}, and {result.root} could not be put "
                "back as it was (see the move step)"]
    if failed:
        return [f"{result.voice} not added: {steps}; {result.root} is unchanged"]
    if result.dry_run:
        lines = [f"dry run: {result.voice} passed every check on the staged copy; nothing was moved"]
    else:
        lines = [f"{result.voice} added to {result.root} and verified"]
    if not result.git_commands:
        return lines + [f"{result.root} is not in a git repository: nothing to commit"]
    lines.append("after a real run, commit it with:" if result.dry_run else "commit it with:")
    notes = ["# once per clone: without it git add stores the weights as plain blobs", "",
             "# model.pth (and a new generator) must show as LFS, not Git", ""]
    return lines + [f"  {command}" + (f"   {note}" if note else "")
                    for command, note in zip(result.git_commands, notes)]
