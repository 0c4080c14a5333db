"""``lavanya synth --lines/--jsonl ... --ray [auto|local|ADDRESS]``: the batch on Ray.

``cli/synth.py`` hands the batch here when ``--ray`` is given; the work is in
``lavanya_cli.speech.ray_batch``. This module only builds the jobs, shows progress and reports.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import EXIT_OK, EXIT_PROBLEMS, LavanyaError
from .app import OutputFormat
from .output import print_json, warning_line

# Failed jobs named one per line at the end; the manifest has them all.
FAILURES_SHOWN = 10


def run_on_ray(address: str, *, lines: Path | None, jsonl: Path | None, output_dir: str | None,
               lang: str | None, gender: str | None, alpha: float | None, models: Path | None = None,
               variant: str | None = None, vocoder: str | None = None, strict: bool = False,
               threads: int | None = None, device: str = "cpu", engine: str | None = None,
               sentence_silence: float = 0.0, manifest: Path | None = None,
               format: OutputFormat = OutputFormat.text) -> int:
    """Run a ``--lines`` or ``--jsonl`` batch on Ray; the exit code: 0 all done, 1 some failed."""
    from ..speech.jobs import jobs_from_jsonl, jobs_from_lines
    from ..speech.ray_batch import RaySettings, run_batch

    if (lines is None) == (jsonl is None):
        raise LavanyaError("--ray runs a batch: give --lines FILE or --jsonl FILE")
    if output_dir is None:
        raise LavanyaError("--ray needs --output-dir DIR (a path, or a URI such as s3://bucket/wavs)")
    settings = RaySettings(address=address, threads=threads or 1)
    if lines is not None:
        if lang is None or gender is None:
            raise LavanyaError("--lines needs --output-dir, --lang and --gender")
        jobs = jobs_from_lines(lines, Path(), lang, gender, alpha)  # names relative to the output directory
    else:
        jobs = jobs_from_jsonl(jsonl, None, lang, gender, alpha)
    voice_options = {"models": models, "variant": variant, "vocoder": vocoder, "strict": strict,
                     "device": device, "engine": engine}
    with _Progress(enabled=format is OutputFormat.text and sys.stderr.isatty()) as progress:
        report = run_batch(jobs, output_dir, settings=settings, voice_options=voice_options,
                           sentence_silence=sentence_silence, manifest=manifest,
                           on_start=progress.start, on_result=progress.advance)
    if format is OutputFormat.json:
        print_json(report.to_json())
    else:
        _print_summary(report)
    return EXIT_PROBLEMS if report.failed else EXIT_OK


def _print_summary(report) -> None:
    for voice in report.voices:
        for reason in voice["skipped"]:
            sys.stderr.write(f"lavanya: passed over {reason}\n")
        tag = " (bundled demo voice)" if voice["bundled"] and voice["demo"] else (" (demo voice)" if voice["demo"] else "")
        sys.stderr.write(f"lavanya: {voice['voice']}{tag} from {voice['root']}\n")
    unpronounced = {word for result in report.results for word in result["unpronounced"]}
    if unpronounced:
        warning_line(f"{len(unpronounced)} words not pronounced (each job's are in {report.manifest})")
    failed = report.failed
    for result in failed[:FAILURES_SHOWN]:
        sys.stderr.write(f"lavanya: job {result['id']} ({result['output']}) failed: {result['error']}\n")
    if len(failed) > FAILURES_SHOWN:
        sys.stderr.write(f"lavanya: ... and {len(failed) - FAILURES_SHOWN} more failed jobs (see {report.manifest})\n")
    where = f" on {report.actors} actors x {report.threads} thread(s)" if report.actors else ""
    sys.stderr.write(f"lavanya: {report.jobs} jobs: {report.done} done, {report.skipped} already done, "
                     f"{len(failed)} failed; {report.audio_seconds:.2f} s of audio in {report.wall_seconds:.1f} s"
                     f"{where} -> {report.output_dir} (results in {report.manifest})\n")


class _Progress:
    """Jobs and audio seconds done, on stderr, only on a terminal; otherwise a no-op."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None
        self._audio = 0.0

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            from .output import stderr

            self._progress = Progress(TextColumn("speaking"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("jobs, {task.fields[audio]:.1f} s of audio"), TimeElapsedColumn(),
                                      console=stderr, transient=True)
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
        return False
