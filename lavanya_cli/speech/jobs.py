"""Synthesis jobs: one text to one WAV, from a single text, a lines file or a JSONL batch.

The work is ordered so that a mistake anywhere in a batch costs nothing:

1. every text is segmented (tags and their numbers, empty text, pauses): ``segment_jobs``;
2. the voices are found without reading weights, and no output (nor the output directory) may
   lie in a model root in use: ``check_outside_roots``;
3. every output is checked without writing anything (``check_outputs``): a regular file or a new
   path in a directory that exists, each output once, standard output at most once and never
   beside a JSON summary, batch outputs inside the output directory; then each directory is
   tried with a temporary file (``check_directories_take_files``);
4. each voice is loaded once, however many jobs use it, and every text is prepared: a text in
   which nothing can be spoken (or, under ``--strict``, a word not said as written) fails here;
   sentences with nothing speakable are left out and reported: ``plan_jobs``;
5. audio is made job by job and streamed into its WAV (``render_jobs``), so memory does not grow
   with the text; an error names the job (``jobs.jsonl:7``) and the WAVs already written stay.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from ..errors import LavanyaError
from ..fileio import check_directory_takes_files, check_output_target
from ..frontend import Silence, Speech, segment_text
from ..frontend.cleaning import lone_surrogate
from ..limits import TEXT_MAX_BYTES, checked_alpha
from ..modeltree.layout import VoiceSpec
from .audio import STDOUT, MelRecorder, WavWriter, wav_output
from .voice import Utterance, Voice, find_usable_voice

JSONL_FIELDS = ("id", "text", "output", "lang", "gender", "alpha")
# A job's own name (JSONL "id"), carried into the results: a few words, not a document.
JOB_ID_MAX_CHARS = 200
# Invalid lines of a job file named in one error; the count says how many more there are.
INVALID_LINES_SHOWN = 20
# How words not said as written are reported, each a list in the summary: left out, spoken
# without some letters, spelled letter by letter (``Utterance`` fields of the same names).
REPORTED_WORDS = ("unpronounced", "incomplete", "spelled")
WAV_SUFFIX = ".wav"
# Options that say which voice to find; the rest of VoiceCache.options are for loading it.
_FIND_OPTIONS = ("models", "variant", "vocoder")


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
        # TEXT_AUDIO_MAX_SECONDS anyway, and planning a 17 MB line once held 766 MB.
        size = len(self.text.encode("utf-8", "surrogatepass"))
        if size > TEXT_MAX_BYTES:
            raise LavanyaError(f"{self.where or 'the text'}: {size:,} bytes of text in one job, more than the "
                               f"{TEXT_MAX_BYTES:,} (1 MiB, about six hours of speech) one text may hold; "
                               "split it into several jobs")

    def failed(self, error: LavanyaError) -> LavanyaError:
        """``error`` naming this job, so the user knows which line of a batch to fix."""
        if not self.where:
            return error
        return LavanyaError(f"{self.where} ({self.output}): {error.message}", error.exit_code)


@dataclass
class PlannedJob:
    job: Job
    voice: Voice
    plan: list[Utterance]

    @property
    def sentences(self) -> int:
        return sum(1 for utterance in self.plan if utterance.text)


@dataclass
class VoiceCache:
    """Voices by ``(language, gender)``: found on first ask (``spec``, no weights read), loaded
    on first use (``get``), each with the same options."""

    options: dict[str, Any] = field(default_factory=dict)
    specs: dict[tuple[str, str], tuple[VoiceSpec, tuple[str, ...]]] = field(default_factory=dict)
    voices: dict[tuple[str, str], Voice] = field(default_factory=dict)
    load_seconds: float = 0.0

    def spec(self, language: str, gender: str) -> VoiceSpec:
        key = (language.lower(), gender.lower())
        if key not in self.specs:
            find = {name: self.options.get(name) for name in _FIND_OPTIONS}
            self.specs[key] = find_usable_voice(language, gender, **find)
        return self.specs[key][0]

    def get(self, language: str, gender: str) -> Voice:
        key = (language.lower(), gender.lower())
        if key not in self.voices:
            spec = self.spec(language, gender)
            started = time.perf_counter()
            load = {name: value for name, value in self.options.items() if name not in _FIND_OPTIONS}
            voice = Voice.load(spec, **load)
            voice.skipped = self.specs[key][1]
            self.voices[key] = voice
            self.load_seconds += time.perf_counter() - started
        return self.voices[key]


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
    if errors:
        raise many_failures(source, "invalid lines", errors)
    if not jobs:
        raise LavanyaError(f"{source}: no text (every line is empty)")
    return jobs


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
    if errors:
        raise many_failures(source, "invalid lines", errors)
    if not jobs:
        raise LavanyaError(f"{source}: no jobs (every line is empty)")
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
        raise LavanyaError(f"{where}: no \"lang\"/\"gender\" strings and no --lang/--gender to fall back on")
    line_alpha = entry.get("alpha", alpha)
    if line_alpha is not None:
        line_alpha = checked_alpha(line_alpha, f"{where}: \"alpha\"")
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


def check_outputs(jobs: list[Job], *, inside: Path | None = None, extra: dict[str, Path] | None = None,
                  json_summary: bool = False, local: bool = True) -> None:
    """Every output of every job, checked before any voice is loaded (see the module notes).
    ``inside``: the directory batch outputs must stay in, symlinks resolved. ``extra``: other
    files the command writes (``{"--plot": path}``), checked alike. ``local=False``: the outputs
    are names on remote storage (a Ray batch's ``s3://...``), where only the rules about
    standard output and each output once apply."""
    named = [(job.where or "-o", job.output, bool(job.where)) for job in jobs]
    named += [(option, str(path), False) for option, path in (extra or {}).items()]
    to_stdout = [where for where, output, _ in named if output == STDOUT]
    if len(to_stdout) > 1:
        raise LavanyaError(f"{to_stdout[1]}: standard output (-) is already the output of {to_stdout[0]}; "
                           "one WAV at most can go there")
    if to_stdout and json_summary:
        raise LavanyaError(f"{to_stdout[0]}: - puts the WAV on standard output, which --format json needs "
                           "for the summary; write the WAV to a file")
    seen: dict[Path, str] = {}
    boundary = Path(inside).resolve() if inside is not None else None
    for where, output, batch in named:
        if output == STDOUT:
            continue
        location = _location(Path(output)) if local else PurePath(output)
        if location in seen:
            raise LavanyaError(f"{where} ({output}): the same file as the output of {seen[location]}; "
                               "give each output its own name")
        seen[location] = where
        if not local:
            continue
        if batch and boundary is not None and not location.is_relative_to(boundary):
            raise LavanyaError(f"{where} ({output}): leads outside the output directory {inside} "
                               "(through a symlink)")
        try:
            check_output_target(Path(output))
        except LavanyaError as exc:
            raise LavanyaError(f"{where}: {exc.message}" if batch else exc.message, exc.exit_code) from None


def check_directories_take_files(outputs: list[str | Path]) -> None:
    """Each directory the outputs go to takes a new file: the last check, after every other
    one passed, since it briefly creates a file there."""
    tried: set[Path] = set()
    for output in outputs:
        if str(output) != STDOUT and (directory := _location(Path(output)).parent) not in tried:
            check_directory_takes_files(Path(output))
            tried.add(directory)


def check_outside_roots(outputs: list[str | Path], roots: list[Path]) -> None:
    """No output inside a model root in use: a WAV must never replace a voice's files."""
    resolved = [(root, Path(root).resolve()) for root in roots]
    for output in outputs:
        if str(output) == STDOUT:
            continue
        location = _location(Path(output))
        for root, real in resolved:
            if location.is_relative_to(real):
                raise LavanyaError(f"{output}: inside the model root {root} in use; write outputs elsewhere")


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


def render_jobs(planned: list[PlannedJob], on_sentence: Callable[[], None] | None = None,
                plot: Path | None = None) -> Iterator[dict[str, Any]]:
    """Speak every job into its WAV, streamed (``-``: standard output); yields one summary per
    job as it is written, so a caller holds the finished ones if a later job fails."""
    for item in planned:
        try:
            result = render_job(item, on_sentence, plot)
        except LavanyaError as exc:
            raise item.job.failed(exc) from None
        yield result


def render_job(item: PlannedJob, on_sentence: Callable[[], None] | None = None, plot: Path | None = None,
               output: AbstractContextManager[WavWriter] | None = None) -> dict[str, Any]:
    """Speak one job into its WAV and return its summary. ``output``: where the WAV goes, a
    ``WavWriter`` context (default: ``wav_output`` on the job's output)."""
    started = time.perf_counter()
    mels = MelRecorder(item.voice.hop_length) if plot is not None else None
    with (output or wav_output(item.job.output, item.voice.sample_rate)) as wav:
        for chunk in item.voice.render(item.plan):
            wav.write(chunk.to_int16())
            if mels is not None:
                mels.add(chunk)
            if not chunk.is_silence and on_sentence is not None:
                on_sentence()
    seconds = time.perf_counter() - started
    if mels is not None:
        mels.save(plot)
    return {
        **({"id": item.job.id} if item.job.id is not None else {}),
        "output": item.job.output,
        "voice": item.voice.spec.name,
        "audio_seconds": round(wav.seconds, 3),
        "synthesis_seconds": round(seconds, 3),
        "sentences": item.sentences,
        "skipped_sentences": sum(1 for utterance in item.plan if utterance.skipped),
        **_reported_words(item.plan),
        "problems": _unique(problem for u in item.plan for problem in u.problems),
    }


def summarize(results: list[dict[str, Any]], voices: VoiceCache, wall_seconds: float) -> dict[str, Any]:
    """The ``--format json`` document: totals, the voices that spoke, and each output."""
    audio = sum(result["audio_seconds"] for result in results)
    synthesis = sum(result["synthesis_seconds"] for result in results)
    return {
        "audio_seconds": round(audio, 3),
        "wall_seconds": round(wall_seconds, 3),
        "load_seconds": round(voices.load_seconds, 3),
        "synthesis_seconds": round(synthesis, 3),
        "real_time_factor": round(synthesis / audio, 4) if audio else None,
        "sentences": sum(result["sentences"] for result in results),
        "skipped_sentences": sum(result["skipped_sentences"] for result in results),
        **{kind: _unique(word for result in results for word in result[kind]) for kind in REPORTED_WORDS},
        "voices": [describe_loaded(voice) for voice in voices.voices.values()],
        "outputs": results,
    }


def describe_loaded(voice: Voice) -> dict[str, Any]:
    """Which voice spoke, from where: the answer to "was that the demo or the real one?"."""
    return {**describe_voice(voice.spec, voice.engine, voice.skipped, voice.notes), "sample_rate": voice.sample_rate}


def describe_voice(spec: VoiceSpec, engine: str, skipped: tuple[str, ...] | list[str] = (),
                   notes: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """A voice found (``skipped``: why earlier roots' voices were passed over) and the engine
    that speaks it (``notes``: what its loading told the user), before or without loading it."""
    return {
        "voice": spec.name,
        "root": str(spec.root),
        "model_dir": str(spec.model_dir),
        "vocoder": str(spec.vocoder.directory),
        "bundled": spec.bundled,
        "demo": spec.demo,
        "engine": engine,
        "skipped": list(skipped),
        "notes": list(notes),
    }


def _location(path: Path) -> Path:
    """Where writing ``path`` puts the file: its directory with symlinks resolved, then its name
    (a symlink at ``path`` itself is replaced, never written through)."""
    return Path(os.path.realpath(path.parent)) / path.name


def _reported_words(plan: list[Utterance]) -> dict[str, list[str]]:
    """Each kind of ``REPORTED_WORDS`` for one plan: the words, each once, in order."""
    return {kind: _unique(word for utterance in plan for word in getattr(utterance, kind)) for kind in REPORTED_WORDS}


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
