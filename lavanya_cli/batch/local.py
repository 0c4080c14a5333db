"""A batch run in this process: each voice loaded once however many jobs use it, every text
prepared before any audio is made (a text with nothing speakable, or under ``strict`` a word not
said as written, fails here), then audio made job by job and streamed into its WAV, so memory
does not grow with the text; an error names the job (``jobs.jsonl:7``) and the WAVs already
written stay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LavanyaError, Stopped, option
from ..fileio import remove_stale_temporaries
from ..frontend import Silence, Speech
from ..speech.audio import STDOUT
from ..speech.voice_cache import VoiceCache
from .jobs import Job, PlannedJob, segment_jobs
from .outputs import OutputTarget, check_directories_take_files, check_outputs, check_outside_roots
from .results import render_job, summarize


@dataclass
class LocalRun:
    """What ``run_local`` does with the jobs besides speaking them: ``output_dir`` (a batch's
    directory, made if need be; its outputs must stay inside), ``plot`` (a single text's
    spectrogram), ``json_summary`` (standard output is the summary's, not a WAV's), where the
    jobs came from (``source``) and the pause between sentences (already checked)."""

    sentence_silence: float = 0.0
    source: str = "the text"
    output_dir: Path | None = None
    plot: Path | None = None
    json_summary: bool = False
    batch: bool = False


def run_local(jobs: list[Job], voices: VoiceCache, run: LocalRun,
              on_start: Callable[[int], None] | None = None,
              on_sentence: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Speak ``jobs`` here and return the summary (``results.summarize``). Everything that can be
    checked is checked before any voice is loaded or anything written (see the module notes).
    ``on_start(sentences)`` and ``on_sentence(audio_seconds)`` feed a progress bar. A failure after the first
    WAV raises with ``summary`` on the exception: what was written until then."""
    started = time.perf_counter()
    segmented = segment_jobs(jobs, run.sentence_silence, source=run.source)
    roots = list(dict.fromkeys(voices.spec(job.language, job.gender).root for job in jobs))
    outputs = [job.output for job in jobs] + ([run.plot] if run.plot is not None else [])
    check_outside_roots(outputs + ([run.output_dir] if run.output_dir is not None else []), roots)
    if run.output_dir is not None:
        OutputTarget(str(run.output_dir)).create()
    check_outputs(jobs, inside=run.output_dir if run.batch else None,
                  extra={option("plot"): run.plot} if run.plot is not None else None, json_summary=run.json_summary)
    check_directories_take_files(outputs)
    if run.batch:  # what writers of these jobs left when they were killed (SIGKILL, out of memory)
        remove_stale_temporaries(job.output for job in jobs if job.output != STDOUT)
    planned = plan_jobs(jobs, segmented, voices)
    if on_start is not None:
        on_start(sum(item.sentences for item in planned))
    results: list[dict[str, Any]] = []
    try:
        for result in render_jobs(planned, on_sentence=on_sentence, plot=run.plot):
            results.append(result)
    except (LavanyaError, Stopped) as exc:
        exc.summary = summarize(results, voices, time.perf_counter() - started)  # type: ignore[attr-defined]
        raise
    return summarize(results, voices, time.perf_counter() - started)


def plan_jobs(jobs: list[Job], segmented: list[list[Speech | Silence]], voices: VoiceCache) -> list[PlannedJob]:
    """Load the voices the jobs need and prepare every text; nothing is synthesized yet."""
    planned = []
    for job, segments in zip(jobs, segmented):
        voice = voices.get(job.language, job.gender)
        try:
            plan = voice.plan_segments(segments, job.alpha)
        except LavanyaError as exc:
            raise job.failed(exc) from None
        planned.append(PlannedJob(job, voice, plan))
    return planned


def render_jobs(planned: list[PlannedJob], on_sentence: Callable[[float], None] | None = None,
                plot: Path | None = None) -> Iterator[dict[str, Any]]:
    """Speak every job into its WAV, streamed (``-``: standard output); yields one summary per
    job as it is written, so a caller holds the finished ones if a later job fails."""
    for item in planned:
        try:
            result = render_job(item, on_sentence, plot)
        except LavanyaError as exc:
            raise item.job.failed(exc) from None
        yield result
