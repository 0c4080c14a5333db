"""``lavanya synth``: text to a WAV through the voice's own FastSpeech2 and HiFi-GAN (their ONNX
exports by default; ``--engine torch`` for the reference), one text or a batch (``--ray``: on Ray)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import LavanyaError
from ..limits import ALPHA_MAX, ALPHA_MIN, PAUSE_MAX_SECONDS
from .app import app, voice_notes
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
    precision: Optional[str] = typer.Option(None, "--precision", metavar="f32|int8",
                                            help="The acoustic model's weights (default: as exported): f32, or "
                                                 "int8 (made once from the f32 export; f32 where its guard "
                                                 "refuses it). ONNX engines only."),
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
    from ..batch.local import LocalRun, run_local
    from ..errors import Stopped
    from ..limits import checked_alpha, input_limit
    from ..speech.audio import STDOUT
    from ..speech.options import FindOptions, LoadOptions
    from ..speech.voice_cache import VoiceCache
    from .progress import ProgressBar

    out = Output(format, "synth")
    # Every number and option first: a typo costs nothing.
    alpha = None if alpha is None else checked_alpha(alpha)
    limit = input_limit(max_input)
    find = FindOptions(models=models, variant=variant, vocoder=vocoder.value if vocoder else None)
    options = LoadOptions(engine=engine, device=device, threads=threads, strict=strict, precision=precision)
    if ray is not None:
        from .synth_ray import run_on_ray

        if any(source is not None for source in (text, text_option, input_file, output, plot)):
            raise LavanyaError("--ray runs a --lines or --jsonl batch; drop -o, --plot and the text options")
        raise typer.Exit(run_on_ray(ray, lines=lines, jsonl=jsonl, output_dir=output_dir, lang=lang, gender=gender,
                                    alpha=alpha, find=find, options=options, sentence_silence=sentence_silence,
                                    manifest=manifest, limit=limit, format=format))
    if manifest is not None:
        raise LavanyaError("--manifest is the results file of a --ray batch; add --ray or drop it")
    directory = None if output_dir is None else Path(output_dir)
    batch = lines is not None or jsonl is not None
    only = None  # (root, options given) where --lang/--gender were left out and a root's only voice speaks
    if batch:
        if output is not None or any(source is not None for source in (text, text_option, input_file)):
            raise LavanyaError("a batch (--lines/--jsonl) takes its texts and outputs from the file; "
                               "drop -o and the text options")
        if plot is not None:
            raise LavanyaError("--plot is for a single text, not a batch")
        if lines is not None and directory is None:
            raise LavanyaError("--lines needs --output-dir")
        if lines is not None:
            lang, gender, only = _only_voice(models, lang, gender)
        directory = Path(".") if directory is None else directory
        from .textinput import read_batch

        jobs = read_batch(lines, jsonl, directory, lang, gender, alpha, limit)
    else:
        from ..batch.jobs import Job
        from ..limits import spoken_text_limit
        from .textinput import read_text_source

        lang, gender, only = _only_voice(models, lang, gender)
        if not output:
            raise LavanyaError("give -o FILE.wav (or -o - for the WAV on standard output)")
        most, over = spoken_text_limit(limit)
        jobs = [Job(read_text_source(text_option, text, input_file, limit=most, over=over), output, lang, gender,
                    alpha)]
    if options.threads_note:
        warning_line(options.threads_note)
    run = LocalRun(sentence_silence=sentence_silence, source=str(lines or jsonl or "the text"),
                   output_dir=directory if batch else None, plot=plot, json_summary=out.stdout_reserved, batch=batch)
    try:
        with ProgressBar(enabled=out.live, unit="sentences") as progress:
            summary = run_local(jobs, VoiceCache(find, options), run, on_start=progress.start,
                                on_sentence=progress.advance)
    except (LavanyaError, Stopped) as exc:
        if (written := getattr(exc, "summary", None)) is not None:
            # what was written before the failure, and the failure (cli.main prints its line)
            out.emit(Result(data={**written, "error": exc.message}))
        raise
    results = summary["outputs"]
    where = results[0]["output"] if len(results) == 1 else f"{len(results)} files"
    if where == STDOUT:
        where = "standard output"
    out.finish(Result(
        data=summary,
        warnings=list(dict.fromkeys(p for result in results for p in result["problems"])),
        notes=voice_notes(summary["voices"], lambda root: _only_voice_note(only, root))
        + [f"lavanya: {summary['audio_seconds']:.2f} s of audio in {summary['wall_seconds']:.1f} s -> {where}"],
    ))


def _only_voice(models: Optional[Path], lang: Optional[str], gender: Optional[str]):
    """``(lang, gender, only)``: ``modeltree.layout.only_voice`` where --lang or --gender was left
    out; ``only`` is the root it chose and the options given, for the voice line."""
    if lang is not None and gender is not None:
        return lang, gender, None
    from ..modeltree.layout import only_voice

    asked = " ".join(f"{name} {value}" for name, value in (("--lang", lang), ("--gender", gender)) if value)
    language, sex, root = only_voice(models, lang, gender)
    return language, sex, (root, asked)


def _only_voice_note(only, spoken_root: str) -> str:
    """The end of the voice line where ``_only_voice`` chose the voice: ", the only voice there"."""
    if only is None:
        return ""
    root, asked = only
    return (", the only voice " + ("there" if str(root) == spoken_root else f"in {root}")
            + (f" for {asked}" if asked else ""))
