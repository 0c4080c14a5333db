"""What each job gave: its summary (``render_job``), the totals of a run (``summarize``), which
voice spoke from where (``voice_origin``), and the results file a Ray run appends each result to
the moment it arrives and resumes from (``read_results``, ``ResultsWriter``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LavanyaError, one_line
from ..fileio import KIB, open_regular, replace_file
from ..modeltree.layout import VoiceSpec
from ..speech.audio import MelRecorder, WavWriter, wav_output

if TYPE_CHECKING:
    from ..speech.voice import Utterance, Voice
    from ..speech.voice_cache import VoiceCache
    from .jobs import PlannedJob

# How words not said as written are reported, each a list in the summary: left out, spoken
# without some letters, spelled letter by letter (``Utterance`` fields of the same names).
REPORTED_WORDS = ("unpronounced", "incomplete", "spelled")

RESULTS_NAME = "lavanya-results.jsonl"

# A manifest line is a few hundred bytes; a longer one is damage (or not our file) and is ignored.
RESULTS_LINE_MAX_BYTES = 64 * KIB


def render_job(item: PlannedJob, on_sentence: Callable[[float], None] | None = None, plot: Path | None = None,
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
                on_sentence(chunk.seconds)
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
        "skipped_sentences": sum(1 for utterance in item.plan if utterance.left_out),
        **_reported_words(item.plan),
        "problems": _unique(problem for u in item.plan for problem in u.problems),
    }


def summarize(results: list[dict[str, Any]], voices: "VoiceCache", wall_seconds: float) -> dict[str, Any]:
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
        "voices": [loaded_voice_origin(voice) for voice in voices.voices],
        "outputs": results,
    }


def loaded_voice_origin(voice: "Voice") -> dict[str, Any]:
    """Which voice spoke, from where: the answer to "was that the demo or the real one?"."""
    return {**voice_origin(voice.spec, voice.engine, voice.passed_over, voice.notes), "sample_rate": voice.sample_rate}


def voice_origin(spec: VoiceSpec, engine: str, passed_over: tuple[str, ...] | list[str] = (),
                 notes: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """A voice found (``passed_over``: why earlier roots' voices were not it; the summary's
    ``skipped``) and the engine that speaks it (``notes``: what its loading told the user),
    before or without loading it."""
    return {
        "voice": spec.name,
        "root": str(spec.root),
        "model_dir": str(spec.model_dir),
        "vocoder": str(spec.vocoder.directory),
        "bundled": spec.bundled,
        "demo": spec.demo,
        "engine": engine,
        "skipped": list(passed_over),
        "notes": list(notes),
    }


def _reported_words(plan: list[Utterance]) -> dict[str, list[str]]:
    """Each kind of ``REPORTED_WORDS`` for one plan: the words, each once, in order."""
    return {kind: _unique(word for utterance in plan for word in getattr(utterance, kind)) for kind in REPORTED_WORDS}


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))


def job_result(number: int | str, name: str, *, error: str | None = None,
               worker: str | None = None) -> dict[str, Any]:
    """A job's manifest entry before it is done (the actor adds ``render_job``'s summary,
    the driver ``job_sha256``); ``number``: the job's own ``id``, else its number in the file."""
    return {"id": number, "output": name, "voice": None, "audio_seconds": None, "sha256": None, "error": error,
            "sentences": 0, "skipped_sentences": 0, **{kind: [] for kind in REPORTED_WORDS}, "problems": [],
            "worker": worker, "load_seconds": 0.0, "synthesis_seconds": 0.0}


def read_results(path: Path, outputs: set[str] | None = None) -> dict[str, dict[str, Any]]:
    """The latest entry per output from a results manifest (only ``outputs``, when given, so memory
    follows the job file, not the manifest); an absent file is an empty one, a damaged line (an
    interrupted write, a hand edit) is skipped."""
    entries: dict[str, dict[str, Any]] = {}
    try:
        handle = open_regular(path, "results manifest")
    except FileNotFoundError:
        return entries
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read the results manifest ({one_line(exc)})") from None
    with handle:
        while line := handle.readline(RESULTS_LINE_MAX_BYTES + 1):
            if len(line) > RESULTS_LINE_MAX_BYTES or not line.endswith(b"\n"):
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # deep nesting is damage too
                continue
            if isinstance(entry, dict) and isinstance(entry.get("output"), str) and (
                    outputs is None or entry["output"] in outputs):
                entries[entry["output"]] = entry
    return entries


class ResultsWriter:
    """The results manifest being written: restarted with the entries still valid, then one line
    appended and flushed per result, so an interrupted run loses at most the line being written."""

    def __init__(self, path: Path, kept: list[dict[str, Any]]):
        self.path = path
        try:
            replace_file(path, lambda handle: handle.writelines(_result_line(entry) for entry in kept))
            self._handle = open(path, "ab")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise LavanyaError(f"{path}: cannot write the results manifest ({one_line(exc)})") from None

    def append(self, entry: dict[str, Any]) -> None:
        try:
            self._handle.write(_result_line(entry))
            self._handle.flush()
        except OSError as exc:
            raise LavanyaError(f"{self.path}: cannot write the results manifest ({one_line(exc)})") from None

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "ResultsWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _result_line(entry: dict[str, Any]) -> bytes:
    return (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
