"""Synthesis jobs: one text to one WAV, from a single text, a lines file or a JSONL batch.

Every job is planned (voice loaded, text segmented and prepared) before any audio is made, so a
malformed tag or an unpronounceable word under ``--strict`` in line 900 fails before line 1 has
cost anything. Each voice is loaded once however many jobs use it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LavanyaError
from .voice import AudioChunk, Utterance, Voice

STDOUT = "-"


@dataclass(frozen=True)
class Job:
    text: str
    output: str  # a path, or "-" for standard output
    language: str
    gender: str
    alpha: float | None = None


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
    """Voices by ``(language, gender)``, each loaded on first use with the same options."""

    options: dict[str, Any] = field(default_factory=dict)
    voices: dict[tuple[str, str], Voice] = field(default_factory=dict)
    load_seconds: float = 0.0

    def get(self, language: str, gender: str) -> Voice:
        key = (language.lower(), gender.lower())
        if key not in self.voices:
            started = time.perf_counter()
            self.voices[key] = Voice.load(language, gender, **self.options)
            self.load_seconds += time.perf_counter() - started
        return self.voices[key]


def jobs_from_lines(path: Path, output_dir: Path, language: str, gender: str, alpha: float | None) -> list[Job]:
    """One job per non-empty line of ``path``; outputs ``output_dir/0001.wav``, ``0002.wav``, ..."""
    jobs = []
    for line in _read_lines(path, "--lines"):
        if line.strip():
            jobs.append(Job(line, str(Path(output_dir) / f"{len(jobs) + 1:04d}.wav"), language, gender, alpha))
    if not jobs:
        raise LavanyaError(f"{path}: no text (every line is empty)")
    return jobs


def jobs_from_jsonl(path: Path, output_dir: Path | None, language: str | None, gender: str | None,
                    alpha: float | None) -> list[Job]:
    """One job per JSON line: ``text`` and ``output`` required; ``lang``, ``gender`` and ``alpha``
    default to the command's options. A relative ``output`` is under ``output_dir`` when given."""
    jobs = []
    for number, line in enumerate(_read_lines(path, "--jsonl"), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LavanyaError(f"{where}: not JSON ({exc.msg})") from None
        if not isinstance(entry, dict):
            raise LavanyaError(f"{where}: expected an object with text and output")
        text, output = entry.get("text"), entry.get("output")
        if not isinstance(text, str) or not isinstance(output, str) or not output:
            raise LavanyaError(f"{where}: needs \"text\" and \"output\" strings")
        lang, gen = entry.get("lang", language), entry.get("gender", gender)
        if not lang or not gen:
            raise LavanyaError(f"{where}: no \"lang\"/\"gender\" and no --lang/--gender to fall back on")
        line_alpha = entry.get("alpha", alpha)
        if line_alpha is not None and (isinstance(line_alpha, bool) or not isinstance(line_alpha, (int, float))):
            raise LavanyaError(f"{where}: \"alpha\" must be a number")
        target = Path(output)
        if output_dir is not None and not target.is_absolute():
            target = Path(output_dir) / target
        jobs.append(Job(text, str(target), str(lang), str(gen), None if line_alpha is None else float(line_alpha)))
    if not jobs:
        raise LavanyaError(f"{path}: no jobs (every line is empty)")
    return jobs


def plan_jobs(jobs: list[Job], voices: VoiceCache, sentence_silence: float = 0.0) -> list[PlannedJob]:
    """Load the voices the jobs need and prepare every text; nothing is synthesized yet."""
    if sentence_silence < 0:
        raise LavanyaError(f"sentence silence must be 0 or more seconds, not {sentence_silence}")
    planned = []
    for index, job in enumerate(jobs):
        voice = voices.get(job.language, job.gender)
        try:
            plan = voice.plan(job.text, job.alpha, sentence_silence)
        except LavanyaError as exc:
            if len(jobs) == 1:
                raise
            raise LavanyaError(f"job {index + 1} ({job.output}): {exc.message}", exc.exit_code) from None
        planned.append(PlannedJob(job, voice, plan))
    return planned


def render_jobs(planned: list[PlannedJob], on_sentence: Callable[[], None] | None = None,
                plot: Path | None = None) -> list[dict[str, Any]]:
    """Speak every job and write its WAV (atomically; ``-`` to stdout). One summary per job."""
    from .audio import join_pcm, save_mel_plot, wav_bytes, write_wav

    results = []
    for item in planned:
        started = time.perf_counter()
        chunks: list[AudioChunk] = []
        for chunk in item.voice.render(item.plan):
            chunks.append(chunk)
            if not chunk.is_silence and on_sentence is not None:
                on_sentence()
        pcm = join_pcm(chunks)
        seconds = time.perf_counter() - started
        if item.job.output == STDOUT:
            sys.stdout.buffer.write(wav_bytes(pcm, item.voice.sample_rate))
            sys.stdout.buffer.flush()
        else:
            write_wav(Path(item.job.output), pcm, item.voice.sample_rate)
        if plot is not None:
            save_mel_plot(chunks, item.voice.hop_length, plot)
        results.append({
            "output": item.job.output,
            "voice": item.voice.spec.name,
            "audio_seconds": round(len(pcm) / item.voice.sample_rate, 3),
            "synthesis_seconds": round(seconds, 3),
            "sentences": item.sentences,
            "unpronounced": _unique(word for u in item.plan for word in u.unpronounced),
            "problems": _unique(problem for u in item.plan for problem in u.problems),
        })
    return results


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
        "unpronounced": _unique(word for result in results for word in result["unpronounced"]),
        "voices": [describe_loaded(voice) for voice in voices.voices.values()],
        "outputs": results,
    }


def describe_loaded(voice: Voice) -> dict[str, Any]:
    """Which voice spoke, from where: the answer to "was that the demo or the real one?"."""
    spec = voice.spec
    return {
        "voice": spec.name,
        "root": str(spec.root),
        "model_dir": str(spec.model_dir),
        "vocoder": str(spec.vocoder.directory),
        "bundled": spec.bundled,
        "demo": spec.demo,
        "sample_rate": voice.sample_rate,
        "skipped": list(voice.skipped),
    }


def _read_lines(path: Path, option: str) -> list[str]:
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise LavanyaError(f"{path}: no such file ({option})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LavanyaError(f"{path}: cannot read it as UTF-8 text ({exc})") from None


def _unique(items) -> list[str]:
    return list(dict.fromkeys(items))
