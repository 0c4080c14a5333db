"""``lavanya synth --lines/--jsonl ... --ray [auto|local|ADDRESS]``: the batch on Ray.

``cli/synth.py`` hands the batch here when ``--ray`` is given; the work is in
``lavanya_cli.speech.ray_batch``. This module reads the job file as a single-process batch does,
shows progress and reports through the output layer.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import EXIT_OK, EXIT_PROBLEMS, LavanyaError, Stopped
from .app import voice_origin_line
from .output import Output, PlainFormat, Result, counted

# Failed jobs and unsaid words named one per line at the end; the manifest has them all.
SHOWN = 10


def run_on_ray(address: str, *, lines: Path | None, jsonl: Path | None, output_dir: str | None,
               lang: str | None, gender: str | None, alpha: float | None, models: Path | None = None,
               variant: str | None = None, vocoder: str | None = None, strict: bool = False,
               threads: int | None = None, device: str = "cpu", engine: str = "auto",
               sentence_silence: float = 0.0, manifest: Path | None = None, limit: int,
               format: PlainFormat = PlainFormat.text) -> int:
    """Run a ``--lines`` or ``--jsonl`` batch on Ray; the exit code: 0 all done, 1 some failed.
    ``threads``: each actor's (default 1), already within this machine's CPUs."""
    from ..speech.jobs import jobs_from_jsonl, jobs_from_lines
    from ..speech.ray_batch import RaySettings, run_batch
    from .textinput import read_input

    if (lines is None) == (jsonl is None):
        raise LavanyaError("--ray runs a batch: give --lines FILE or --jsonl FILE")
    if output_dir is None:
        raise LavanyaError("--ray needs --output-dir DIR (a path, or a URI such as s3://bucket/wavs)")
    settings = RaySettings(address=address, threads=threads or 1)
    # Outputs are names in the output directory, which may be a URI: run_batch places them.
    if lines is not None:
        if lang is None or gender is None:
            raise LavanyaError("--lines needs --output-dir, --lang and --gender")
        jobs = jobs_from_lines(read_input(lines, limit, "--lines"), str(lines), Path(), lang, gender, alpha)
    else:
        jobs = jobs_from_jsonl(read_input(jsonl, limit, "--jsonl"), str(jsonl), Path(), lang, gender, alpha)
    voice_options = {"models": models, "variant": variant, "vocoder": vocoder, "strict": strict,
                     "device": device, "engine": engine}
    out = Output(format, "synth")
    try:
        with out.own_stdout(), _Progress(enabled=out.live and sys.stderr.isatty()) as progress:
            report = run_batch(jobs, output_dir, settings=settings, voice_options=voice_options,
                               sentence_silence=sentence_silence, manifest=manifest,
                               inputs=[source for source in (lines, jsonl) if source is not None],
                               on_start=progress.start, on_result=progress.advance)
    except (LavanyaError, Stopped) as exc:
        # Every way out says what was recorded: the summary first, then main's one error line.
        if (stopped := getattr(exc, "report", None)) is not None:
            out.emit(Result(data={**stopped.to_json(), "error": exc.message}, notes=_notes(stopped)))
        raise
    result = Result(data=report.to_json(), warnings=_word_warnings(report), notes=_notes(report),
                    exit_code=EXIT_PROBLEMS if report.failed else EXIT_OK)
    out.emit(result)
    return result.status


def _word_warnings(report) -> list[str]:
    """Words not said as written (what ``synth`` warns of), the first few; the rest are in the manifest."""
    problems = list(dict.fromkeys(problem for entry in report.results for problem in entry["problems"]))
    more = ([f"... and {len(problems) - SHOWN} more (each job's are in {report.manifest})"]
            if len(problems) > SHOWN else [])
    return problems[:SHOWN] + more


def _notes(report) -> list[str]:
    notes = []
    for voice in report.voices:
        notes += [f"lavanya: passed over {reason}" for reason in voice["skipped"]]
        notes += [f"lavanya: {note}" for note in voice["notes"]]
        notes.append(voice_origin_line(voice["voice"], voice["root"], voice["bundled"], voice["demo"], voice["engine"]))
    for lost in report.lost:
        handed = f"its {counted(lost['jobs'], 'job')} went to the other workers" if lost["jobs"] else "it held no job"
        notes.append(f"lavanya: a worker was lost: {lost['why']} "
                     f"({lost['node'] or 'address unknown'}{', ' + lost['worker'] if lost['worker'] else ''}); {handed}")
    if report.temporaries_removed:
        notes.append(f"lavanya: removed {counted(report.temporaries_removed, 'temporary file')} "
                     "left by writers that were stopped")
    failed = report.failed
    notes += [f"lavanya: failed: {entry['error']}" for entry in failed[:SHOWN]]
    if len(failed) > SHOWN:
        notes.append(f"lavanya: ... and {len(failed) - SHOWN} more failed jobs (see {report.manifest})")
    where = (f" on {counted(report.actors, 'actor')} x {counted(report.threads, 'thread')}" if report.actors else "")
    notes.append(f"lavanya: {counted(report.jobs, 'job')}: {report.done} done, {report.skipped} already done, "
                 f"{len(failed)} failed; {report.audio_seconds:.2f} s of audio in {report.wall_seconds:.1f} s"
                 f"{where} -> {report.output_dir} (results in {report.manifest})")
    if report.ray_log:
        notes.append(f"lavanya: Ray's messages of this run: {report.ray_log}")
    return notes


class _Progress:
    """Jobs and audio seconds done, on stderr, only on a terminal; otherwise a no-op."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._terminal: Any = None
        self._task: Any = None
        self._audio = 0.0

    def __enter__(self) -> "_Progress":
        if self.enabled:
            import os

            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            # A copy of the terminal made now: while the batch runs, standard error is Ray's log.
            self._terminal = os.fdopen(os.dup(sys.stderr.fileno()), "w", encoding="utf-8", errors="replace")
            self._progress = Progress(TextColumn("speaking"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("jobs, {task.fields[audio]:.1f} s of audio"), TimeElapsedColumn(),
                                      console=Console(file=self._terminal, highlight=False), transient=True)
            self._progress.__enter__()
        return self

    def start(self, pending: int, total: int) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task("speaking", total=pending, audio=0.0)

    def advance(self, result: dict[str, Any]) -> None:
        if self._progress is not None and self._task is not None:
            self._audio += result["audio_seconds"] or 0.0
            self._progress.update(self._task, advance=1, audio=self._audio)

    def __exit__(self, *exc_info: object) -> bool:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)
            self._terminal.close()
        return False
