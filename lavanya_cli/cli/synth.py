"""``lavanya synth``: text to a WAV through the voice's own FastSpeech2 and HiFi-GAN (their ONNX
exports by default; ``--engine torch`` for the reference), one text or a batch (``--ray``: on Ray)."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import LavanyaError, one_line
from ..limits import ALPHA_MAX, ALPHA_MIN, PAUSE_MAX_SECONDS
from .app import app, voice_origin_line
from .options import (EngineOption, FormatOption, InputOption, MaxInputOption, ModelsOption, TextOption,
                      ThreadsOption, gender_option, lang_option, variant_option)
from .output import Output, PlainFormat, Result, warning_line


class VocoderFamily(str, Enum):
    aryan = "aryan"
    dravidian = "dravidian"


@app.command()
def synth(
    text: Optional[str] = typer.Argument(None, help="Text to speak (default: --text, --input or stdin)."),
    lang: Optional[str] = lang_option(None),
    gender: Optional[str] = gender_option(None),
    variant: Optional[str] = variant_option(),
    models: Optional[Path] = ModelsOption,
    text_option: Optional[str] = TextOption,
    input_file: Optional[Path] = InputOption,
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="WAV file to write (mono 16-bit PCM); - writes it to stdout."),
    lines: Optional[Path] = typer.Option(None, "--lines", dir_okay=False,
                                         help="Batch: one WAV per non-empty line of FILE (needs --output-dir)."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", dir_okay=False,
                                         help="Batch: JSON lines with text, output and optional lang, gender, alpha."),
    output_dir: Optional[str] = typer.Option(None, "--output-dir", metavar="DIR",
                                             help="Directory for --lines WAVs (0001.wav, ...) and --jsonl outputs "
                                                  "(default for --jsonl: the current directory); with --ray also "
                                                  "a URI pyarrow understands (s3://..., file:///...)."),
    alpha: Optional[float] = typer.Option(None, "--alpha",
                                          help=f"Speaking rate: higher is slower, {ALPHA_MIN:g} to {ALPHA_MAX:g} "
                                               "(default 1.0)."),
    sentence_silence: float = typer.Option(0.0, "--sentence-silence", metavar="SECONDS",
                                           help=f"Pause between sentences, 0 to {PAUSE_MAX_SECONDS:g} s."),
    engine: str = EngineOption,
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N (cuda: the torch engine)."),
    threads: Optional[int] = ThreadsOption,
    vocoder: Optional[VocoderFamily] = typer.Option(None, "--vocoder",
                                                    help="Vocoder family instead of the language's own."),
    strict: bool = typer.Option(False, "--strict", help="Fail on a word that cannot be pronounced."),
    format: PlainFormat = FormatOption,
    plot: Optional[Path] = typer.Option(None, "--plot", dir_okay=False, help="Save the mel spectrogram as PNG."),
    max_input: Optional[str] = MaxInputOption,
    ray: Optional[str] = typer.Option(None, "--ray", metavar="auto|local|ADDRESS",
                                      help="Run the --lines/--jsonl batch on Ray: local (a Ray on this machine), "
                                           "auto (the cluster this machine is in) or a head node's host:port."),
    manifest: Optional[Path] = typer.Option(None, "--manifest", dir_okay=False,
                                            help="With --ray: the results file (JSON lines; default "
                                                 "DIR/lavanya-results.jsonl; needed for a URI --output-dir)."),
) -> None:
    """Speak text with a voice and write a WAV at the voice's sample rate.

    The text comes from TEXT, --text, --input or standard input. --lang and --gender may be left
    out where the model root holds one voice (the bundled demo does). With --format json, stdout is
    a summary: audio and wall seconds, real-time factor, the voices and the files written.
    """
    started = time.perf_counter()
    from ..errors import Stopped
    from ..fileio import remove_stale_temporaries
    from ..limits import checked_alpha, checked_pause, input_limit, spoken_text_limit, usable_threads
    from ..speech.jobs import (STDOUT, Job, VoiceCache, check_directories_take_files, check_outputs,
                               check_outside_roots, jobs_from_jsonl, jobs_from_lines, plan_jobs, render_jobs,
                               segment_jobs, summarize)
    from ..speech.engines import validate_engine
    from ..speech.runtime import checked_device
    from .textinput import read_input, read_text_source

    out = Output(format, "synth")
    # Every number and the device first: a typo costs nothing.
    alpha = None if alpha is None else checked_alpha(alpha)
    sentence_silence = checked_pause(sentence_silence)
    threads, threads_note = usable_threads(threads)
    limit = input_limit(max_input)
    device = checked_device(device)
    validate_engine(engine, device)
    if ray is not None:
        from .synth_ray import run_on_ray

        if any(source is not None for source in (text, text_option, input_file, output, plot)):
            raise LavanyaError("--ray runs a --lines or --jsonl batch; drop -o, --plot and the text options")
        raise typer.Exit(run_on_ray(
            ray, lines=lines, jsonl=jsonl, output_dir=output_dir, lang=lang, gender=gender, alpha=alpha,
            models=models, variant=variant, vocoder=vocoder.value if vocoder else None, strict=strict,
            threads=threads, device=device, engine=engine, sentence_silence=sentence_silence, manifest=manifest,
            limit=limit, format=format))
    if manifest is not None:
        raise LavanyaError("--manifest is the results file of a --ray batch; add --ray or drop it")
    output_dir = None if output_dir is None else Path(output_dir)

    if lines is not None and jsonl is not None:
        raise LavanyaError("give --lines or --jsonl, not both")
    batch = lines is not None or jsonl is not None
    if batch:
        if output is not None or any(source is not None for source in (text, text_option, input_file)):
            raise LavanyaError("a batch (--lines/--jsonl) takes its texts and outputs from the file; "
                               "drop -o and the text options")
        if plot is not None:
            raise LavanyaError("--plot is for a single text, not a batch")
    only = None  # (root, options given) where --lang/--gender were left out and a root's only voice speaks
    if lines is not None:
        if output_dir is None:
            raise LavanyaError("--lines needs --output-dir")
        lang, gender, only = _only_voice(models, lang, gender)
        jobs = jobs_from_lines(read_input(lines, limit, "--lines"), str(lines), output_dir, lang, gender, alpha)
    elif jsonl is not None:
        output_dir = Path(".") if output_dir is None else output_dir
        jobs = jobs_from_jsonl(read_input(jsonl, limit, "--jsonl"), str(jsonl), output_dir, lang, gender, alpha)
    else:
        lang, gender, only = _only_voice(models, lang, gender)
        if not output:
            raise LavanyaError("give -o FILE.wav (or -o - for the WAV on standard output)")
        most, over = spoken_text_limit(limit)
        jobs = [Job(read_text_source(text_option, text, input_file, limit=most, over=over), output, lang, gender,
                    alpha)]
    segmented = segment_jobs(jobs, sentence_silence, source=str(lines or jsonl or "the text"))
    # Where the outputs go, checked before anything is written and any voice is loaded.
    voices = VoiceCache(options=dict(models=models, variant=variant, vocoder=vocoder.value if vocoder else None,
                                     device=device, threads=threads, strict=strict, engine=engine))
    roots = list(dict.fromkeys(voices.spec(job.language, job.gender).root for job in jobs))
    outputs = [job.output for job in jobs] + ([plot] if plot is not None else [])
    check_outside_roots(outputs + ([output_dir] if output_dir is not None else []), roots)
    if output_dir is not None:
        _make_directory(output_dir)
    extra = {"--plot": plot} if plot is not None else None
    check_outputs(jobs, inside=output_dir if batch else None, extra=extra, json_summary=out.stdout_reserved)
    check_directories_take_files(outputs)
    if batch:  # what writers of these jobs left when they were killed (SIGKILL, out of memory)
        remove_stale_temporaries(job.output for job in jobs if job.output != STDOUT)
    if threads_note:
        warning_line(threads_note)
    planned = plan_jobs(jobs, segmented, voices)
    total = sum(item.sentences for item in planned)
    results: list[dict] = []
    try:
        with _progress(total, enabled=out.live) as advance:
            for result in render_jobs(planned, on_sentence=advance, plot=plot):
                results.append(result)
    except (LavanyaError, Stopped) as exc:
        # what was written before the failure, and the failure (cli.main prints its line)
        out.emit(Result(data={**summarize(results, voices, time.perf_counter() - started), "error": exc.message}))
        raise
    summary = summarize(results, voices, time.perf_counter() - started)
    where = results[0]["output"] if len(results) == 1 else f"{len(results)} files"
    if where == STDOUT:
        where = "standard output"
    out.finish(Result(
        data=summary,
        warnings=list(dict.fromkeys(p for result in results for p in result["problems"])),
        notes=[line for loaded in summary["voices"] for line in (
            *(f"lavanya: passed over {reason}" for reason in loaded["skipped"]),
            *(f"lavanya: {note}" for note in loaded["notes"]),
            voice_origin_line(loaded["voice"], loaded["root"], loaded["bundled"], loaded["demo"], loaded["engine"])
            + _only_voice_note(only, loaded["root"]))]
        + [f"lavanya: {summary['audio_seconds']:.2f} s of audio in {summary['wall_seconds']:.1f} s -> {where}"],
    ))


def _only_voice(models: Optional[Path], lang: Optional[str], gender: Optional[str]):
    """``(lang, gender, only)``: a missing --lang or --gender taken from the one voice that fits in
    the first root holding any voice, in the order synth looks (--models, $LAVANYA_MODELS,
    ./Fastspeech2_HS, the bundled demo); ``only`` is that root and the option given, for the voice line.
    Several voices, or none that fits: one line listing the voices there."""
    if lang is not None and gender is not None:
        return lang, gender, None
    from ..modeltree.layout import LANGUAGE_ALIASES, ModelRoot, candidate_roots, resolve_root

    asked = " ".join(f"{option} {value}" for option, value in (("--lang", lang), ("--gender", gender)) if value)
    wanted = (LANGUAGE_ALIASES.get(lang.lower(), lang.lower()) if lang else None, gender.lower() if gender else None)
    roots = candidate_roots(models) or [resolve_root(models)]  # none at all: resolve_root's one line
    for root in roots:
        tree = ModelRoot(root)
        names = sorted({(voice.language, voice.gender) for voice in tree.voices()})
        if not names:
            continue
        fits = [name for name in names if all(want in (None, have) for want, have in zip(wanted, name))]
        if len(fits) == 1 and not tree.unreadable:
            return *fits[0], (root, asked)
        listing = ", ".join(f"{language}/{sex}" for language, sex in fits or names)
        found = (f"no voice in {root} fits {asked}; voices there: {listing}" if not fits
                 else f"voices in {root}{f' for {asked}' if asked else ''}: {listing}")
        if tree.unreadable:
            found += f" (and directories that cannot be listed: see lavanya voices {root})"
        raise LavanyaError(f"give --lang and --gender: {found}")
    raise LavanyaError(f"{roots[0]}: no voices found (expected <language>/<gender>/model/ directories); "
                       "pass the model root with --models")


def _only_voice_note(only, spoken_root: str) -> str:
    """The end of the voice line where ``_only_voice`` chose the voice: ", the only voice there"."""
    if only is None:
        return ""
    root, asked = only
    return (", the only voice " + ("there" if str(root) == spoken_root else f"in {root}")
            + (f" for {asked}" if asked else ""))


def _make_directory(directory: Path) -> None:
    """``--output-dir``, created if need be (one line when that cannot be done)."""
    from ..fileio import make_directories

    try:
        make_directories(directory)
    except FileExistsError:
        raise LavanyaError(f"{directory}: --output-dir is not a directory") from None
    except OSError as exc:
        raise LavanyaError(f"{directory}: cannot create --output-dir ({one_line(exc)})") from None


class _progress:
    """A sentence progress bar on stderr, shown only on a terminal; otherwise a no-op."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled and total > 1 and sys.stderr.isatty()
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from .output import stderr

        self._progress = Progress(TextColumn("speaking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  console=stderr, transient=True)
        self._progress.__enter__()
        task = self._progress.add_task("speaking", total=self.total)
        return lambda: self._progress.advance(task)

    def __exit__(self, *exc_info):
        if self._progress is not None:
            self._progress.__exit__(*exc_info)
        return False
