"""``lavanya synth --lines/--jsonl ... --ray [auto|local|ADDRESS]``: the batch on Ray.

``cli/synth.py`` hands the batch here when ``--ray`` is given; the work is in
``lavanya_cli.batch.ray``. This module reads the job file with the reader a local batch uses,
shows the same progress bar and reports through the output layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import EXIT_OK, EXIT_PROBLEMS, LavanyaError, Stopped
from .app import voice_notes
from .output import Output, PlainFormat, Result, counted
from .progress import ProgressBar

if TYPE_CHECKING:
    from ..speech.options import FindOptions, LoadOptions

# Failed jobs and unsaid words named one per line at the end; the manifest has them all.
SHOWN = 10


def run_on_ray(address: str, *, lines: Path | None, jsonl: Path | None, output_dir: str | None,
               lang: str | None, gender: str | None, alpha: float | None, find: "FindOptions",
               options: "LoadOptions", sentence_silence: float = 0.0, manifest: Path | None = None, limit: int,
               format: PlainFormat = PlainFormat.text) -> int:
    """Run a ``--lines`` or ``--jsonl`` batch on Ray; the exit code: 0 all done, 1 some failed.
    Each actor gets ``options.threads`` threads (default 1)."""
    from ..batch.ray import RaySettings, run_batch
    from .textinput import read_batch

    if (lines is None) == (jsonl is None):
        raise LavanyaError("--ray runs a batch: give --lines FILE or --jsonl FILE")
    if output_dir is None:
        raise LavanyaError("--ray needs --output-dir DIR (a path, or a URI such as s3://bucket/wavs)")
    settings = RaySettings(address=address, threads=options.threads or 1)
    if lines is not None and (lang is None or gender is None):
        raise LavanyaError("--lines needs --output-dir, --lang and --gender")
    # Outputs are names in the output directory, which may be a URI: run_batch places them.
    jobs = read_batch(lines, jsonl, Path(), lang, gender, alpha, limit)
    out = Output(format, "synth")
    try:
        with out.own_stdout(), ProgressBar(enabled=out.live, unit="jobs") as progress:
            report = run_batch(jobs, output_dir, settings=settings, find=find, options=options,
                               sentence_silence=sentence_silence, manifest=manifest,
                               inputs=[source for source in (lines, jsonl) if source is not None],
                               on_start=progress.start,
                               on_result=lambda entry: progress.advance(entry["audio_seconds"]))
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
    notes = voice_notes(report.voices)
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
    notes.append(f"lavanya: {counted(report.jobs, 'job')}: {report.done} done, {report.already_done} already done, "
                 f"{len(failed)} failed; {report.audio_seconds:.2f} s of audio in {report.wall_seconds:.1f} s"
                 f"{where} -> {report.output_dir} (results in {report.manifest})")
    if report.ray_log:
        notes.append(f"lavanya: Ray's messages of this run: {report.ray_log}")
    return notes
