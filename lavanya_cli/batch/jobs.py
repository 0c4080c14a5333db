"""Synthesis jobs: one text to one WAV, from a single text, a lines file or a JSONL batch.

The work is ordered so that a mistake anywhere in a batch costs nothing: every text is read
and its fields checked here, then segmented (tags and their numbers, empty text, pauses:
``segment_jobs``) before any voice is found, any output checked (``batch.outputs``) or any
voice loaded; every failure of a job file is named at once (``many_failures``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

from ..errors import LavanyaError, option
from ..fileio import format_size
from ..frontend import Silence, Speech, segment_text
from ..frontend.cleaning import lone_surrogate
from ..limits import TEXT_MAX_BYTES, checked_alpha
from ..speech.audio import STDOUT

if TYPE_CHECKING:
    from ..speech.voice import Utterance, Voice

JSONL_FIELDS = ("id", "text", "output", "lang", "gender", "alpha")
# A job's own name (JSONL "id"), carried into the results: a few words, not a document.
JOB_ID_MAX_CHARS = 200
# Invalid lines of a job file named in one error; the count says how many more there are.
INVALID_LINES_SHOWN = 20
WAV_SUFFIX = ".wav"


@dataclass(frozen=True)
class Job:
    text: str
    output: str  # a path, or "-" for standard output
    language: str
    gender: str
    alpha: float | None = None
    where: str = ""  # where the job was written ("jobs.jsonl:7"); empty for a single text
    id: str | None = None  # the job's own name from its JSONL line, carried into the results

    def __post_init__(self) -> None:
        # Checked as the job is made, before any work: a longer text cannot be spoken within
        # TEXT_AUDIO_MAX_SECONDS anyway, and planning a far longer line once held many times its size
        # in memory (docs/safety.md).
        size = len(self.text.encode("utf-8", "surrogatepass"))
        if size > TEXT_MAX_BYTES:
            raise LavanyaError(f"{self.where or 'the text'}: {size:,} bytes of text in one job, more than the "
                               f"{TEXT_MAX_BYTES:,} ({format_size(TEXT_MAX_BYTES)}, about six hours of speech) one text may hold; "
                               "split it into several jobs")

    def failed(self, error: LavanyaError) -> LavanyaError:
        """``error`` naming this job, so the user knows which line of a batch to fix."""
        if not self.where:
            return error
        return LavanyaError(f"{self.where} ({self.output}): {error.message}", error.exit_code)


def jobs_from_lines(text: str, source: str, output_dir: Path, language: str, gender: str,
                    alpha: float | None) -> list[Job]:
    """One job per non-empty line of ``text`` (read from ``source``); outputs
    ``output_dir/0001.wav``, ``0002.wav``, ..."""
    jobs, errors = [], []
    for number, line in file_lines(text):
        if line.strip():
            output = str(Path(output_dir) / f"{len(jobs) + len(errors) + 1:04d}{WAV_SUFFIX}")
            try:
                jobs.append(Job(line, output, language, gender, alpha, where=f"{source}:{number}"))
            except LavanyaError as exc:  # a line too long for one job
                errors.append(exc.message)
    return _every_job(jobs, errors, source, "no text")


def jobs_from_jsonl(text: str, source: str, output_dir: Path, language: str | None, gender: str | None,
                    alpha: float | None) -> list[Job]:
    """One job per JSON line of ``text`` (read from ``source``): ``text`` and ``output`` required;
    ``lang``, ``gender`` and ``alpha`` default to the command's options. ``output`` is a relative
    path ending in ``.wav``, under ``output_dir`` (without ``--output-dir``: the current
    directory), or ``-`` for standard output."""
    jobs, errors, ids = [], [], {}
    for number, line in file_lines(text):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            job = _jsonl_job(line, where, output_dir, language, gender, alpha)
            if job.id is not None and (first := ids.setdefault(job.id, where)) != where:
                raise LavanyaError(f"{where}: id {job.id[:40]!r} is already the id of {first}; give each job its own")
            jobs.append(job)
        except LavanyaError as exc:
            errors.append(exc.message)
    return _every_job(jobs, errors, source, "no jobs")


def _every_job(jobs: list[Job], errors: list[str], source: str, nothing: str) -> list[Job]:
    """``jobs`` where every line of ``source`` made one; else the lines' errors, or ``nothing``
    where every line was empty."""
    if errors:
        raise many_failures(source, "invalid lines", errors)
    if not jobs:
        raise LavanyaError(f"{source}: {nothing} (every line is empty)")
    return jobs


def file_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(number, line)`` for each line of a job file: lines end at a newline only (a CRLF's
    carriage return dropped), so a U+2028 or U+0085 inside a JSON string (legal JSON) neither
    splits a job nor shifts the line numbers."""
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.removesuffix("\r")


def many_failures(source: str, what: str, errors: list[str]) -> LavanyaError:
    """One error for every failure found in ``source`` (``what``: "invalid lines"), so one run
    names them all: alone, the failure itself; else a count, with the first
    ``INVALID_LINES_SHOWN`` as details and how many more there are."""
    if len(errors) == 1:
        return LavanyaError(errors[0])
    more = len(errors) - INVALID_LINES_SHOWN
    details = errors[:INVALID_LINES_SHOWN] + ([f"... and {more} more {what} in {source}"] if more > 0 else [])
    return LavanyaError(f"{source}: {len(errors)} {what}; nothing was spoken", details=tuple(details))


def _jsonl_job(line: str, where: str, output_dir: Path, language: str | None, gender: str | None,
               alpha: float | None) -> Job:
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError) as exc:  # ValueError: JSONDecodeError, or digits beyond Python's limit
        raise LavanyaError(f"{where}: not JSON ({getattr(exc, 'msg', None) or exc})") from None
    if not isinstance(entry, dict):
        raise LavanyaError(f"{where}: expected an object with text and output")
    if unknown := [str(key) for key in entry if key not in JSONL_FIELDS]:
        raise LavanyaError(f"{where}: unknown field {unknown[0][:40]!r} (fields: {', '.join(JSONL_FIELDS)})")
    for key, value in entry.items():
        if isinstance(value, str) and (at := lone_surrogate(value)) is not None:
            raise LavanyaError(f"{where}: \"{key}\" holds a lone surrogate (\\u{ord(value[at]):04x}, half of a "
                               "character) at character {at}, which no text can hold")
    text, output = entry.get("text"), entry.get("output")
    if not isinstance(text, str) or not isinstance(output, str) or not output:
        raise LavanyaError(f"{where}: needs \"text\" and \"output\" strings")
    lang, gen = entry.get("lang", language), entry.get("gender", gender)
    if not (isinstance(lang, str) and lang and isinstance(gen, str) and gen):
        raise LavanyaError(f"{where}: no \"lang\"/\"gender\" strings and no {option('language', flag='--lang')}/"
                           f"{option('gender')} to fall back on")
    line_alpha = alpha  # the command's, checked where it came in
    if "alpha" in entry:
        line_alpha = None if entry["alpha"] is None else checked_alpha(entry["alpha"], f"{where}: \"alpha\"")
    job_id = entry.get("id")
    if job_id is not None and not (isinstance(job_id, str) and job_id.strip() and len(job_id) <= JOB_ID_MAX_CHARS):
        raise LavanyaError(f"{where}: \"id\" must be a string of 1 to {JOB_ID_MAX_CHARS} characters")
    return Job(text, batch_output(output, output_dir, where), lang, gen, line_alpha, where=where, id=job_id)


def batch_output(output: str, output_dir: Path, where: str) -> str:
    """A batch job's ``output`` as a path under ``output_dir``: relative, no ``..``, a ``.wav``
    name (``-``, standard output, as it is)."""
    if output == STDOUT:
        return STDOUT
    relative = PurePath(output)
    if "\0" in output or relative.is_absolute() or ".." in relative.parts:
        raise LavanyaError(f"{where}: output {output[:80]!r} must be a relative path inside the output "
                           "directory (not absolute, no '..')")
    if relative.suffix.lower() != WAV_SUFFIX:
        raise LavanyaError(f"{where}: output {output[:80]!r} must be a {WAV_SUFFIX} file")
    return str(Path(output_dir) / relative)


def segment_jobs(jobs: list[Job], sentence_silence: float = 0.0,
                 source: str = "the text") -> list[list[Speech | Silence]]:
    """Every job's text cut into sentences and pauses, before any voice is loaded: a malformed
    tag, a number out of range or empty text fails here, every such job named at once
    (``source``: where the jobs were written, for the count)."""
    segmented, errors = [], []
    for job in jobs:
        try:
            segmented.append(segment_text(job.text, sentence_silence=sentence_silence))
        except LavanyaError as exc:
            errors.append(job.failed(exc).message)
    if errors:
        raise many_failures(source, "jobs that cannot be spoken", errors)
    return segmented


@dataclass
class PlannedJob:
    job: Job
    voice: "Voice"
    plan: list["Utterance"]

    @property
    def sentences(self) -> int:
        return sum(1 for utterance in self.plan if utterance.text)
