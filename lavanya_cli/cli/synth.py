"""``lavanya synth``: text to a WAV through the voice's own FastSpeech2 and HiFi-GAN."""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from ..errors import LavanyaError
from .app import ModelsOption, OutputFormat, app
from .output import print_json, warning_line


class VocoderFamily(str, Enum):
    aryan = "aryan"
    dravidian = "dravidian"


@app.command()
def synth(
    text: Optional[str] = typer.Argument(None, help="Text to speak (default: --text, --input or stdin)."),
    lang: Optional[str] = typer.Option(None, "--lang", help="Voice language, e.g. hindi."),
    gender: Optional[str] = typer.Option(None, "--gender", help="male or female."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Voice variant, e.g. latest, bilingual."),
    models: Optional[Path] = ModelsOption,
    text_option: Optional[str] = typer.Option(None, "--text", help="Text to speak."),
    input_file: Optional[Path] = typer.Option(None, "--input", help="Read the text from FILE (- for stdin).",
                                              dir_okay=False),
    output: Optional[str] = typer.Option(None, "-o", "--output",
                                         help="WAV file to write (mono 16-bit PCM); - writes it to stdout."),
    lines: Optional[Path] = typer.Option(None, "--lines", dir_okay=False,
                                         help="Batch: one WAV per non-empty line of FILE (needs --output-dir)."),
    jsonl: Optional[Path] = typer.Option(None, "--jsonl", dir_okay=False,
                                         help="Batch: JSON lines with text, output and optional lang, gender, alpha."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", file_okay=False,
                                              help="Directory for --lines WAVs (0001.wav, ...) or relative --jsonl outputs."),
    alpha: Optional[float] = typer.Option(None, "--alpha", help="Speaking rate: higher is slower (default 1.0)."),
    sentence_silence: float = typer.Option(0.0, "--sentence-silence", metavar="SECONDS",
                                           help="Pause between sentences."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch."),
    vocoder: Optional[VocoderFamily] = typer.Option(None, "--vocoder",
                                                    help="Vocoder family instead of the language's own."),
    strict: bool = typer.Option(False, "--strict", help="Fail on a word that cannot be pronounced."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format",
                                        help="json prints a summary (audio and wall seconds, real-time factor)."),
    plot: Optional[Path] = typer.Option(None, "--plot", dir_okay=False, help="Save the mel spectrogram as PNG."),
) -> None:
    """Speak text with a voice and write a WAV at the voice's sample rate."""
    started = time.perf_counter()
    from ..speech.jobs import VoiceCache, jobs_from_jsonl, jobs_from_lines, plan_jobs, render_jobs, summarize
    from ..speech.jobs import STDOUT, Job
    from .textinput import read_text_source

    if lines is not None and jsonl is not None:
        raise LavanyaError("give --lines or --jsonl, not both")
    batch = lines is not None or jsonl is not None
    if batch:
        if output is not None or any(source is not None for source in (text, text_option, input_file)):
            raise LavanyaError("a batch (--lines/--jsonl) takes its texts and outputs from the file; "
                               "drop -o and the text options")
        if plot is not None:
            raise LavanyaError("--plot is for a single text, not a batch")
    if lines is not None:
        if output_dir is None or lang is None or gender is None:
            raise LavanyaError("--lines needs --output-dir, --lang and --gender")
        jobs = jobs_from_lines(lines, output_dir, lang, gender, alpha)
    elif jsonl is not None:
        jobs = jobs_from_jsonl(jsonl, output_dir, lang, gender, alpha)
    else:
        if lang is None or gender is None:
            raise LavanyaError("give --lang and --gender (see lavanya voices)")
        if output is None:
            raise LavanyaError("give -o FILE.wav (or -o - for the WAV on standard output)")
        if output == STDOUT and format is OutputFormat.json:
            raise LavanyaError("-o - puts the WAV on standard output; --format json needs -o FILE")
        jobs = [Job(read_text_source(text_option, text, input_file), output, lang, gender, alpha)]
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)

    voices = VoiceCache(options=dict(models=models, variant=variant, device=device, threads=threads,
                                     vocoder=vocoder.value if vocoder else None, strict=strict))
    planned = plan_jobs(jobs, voices, sentence_silence)
    total = sum(item.sentences for item in planned)
    with _progress(total, enabled=format is OutputFormat.text) as advance:
        results = render_jobs(planned, on_sentence=advance, plot=plot)
    summary = summarize(results, voices, time.perf_counter() - started)

    if format is OutputFormat.json:
        print_json(summary)
        return
    for problem in dict.fromkeys(p for result in results for p in result["problems"]):
        warning_line(f"not pronounced: {problem}")
    for loaded in summary["voices"]:
        for reason in loaded["skipped"]:
            sys.stderr.write(f"lavanya: passed over {reason}\n")
        tag = " (bundled demo voice)" if loaded["bundled"] and loaded["demo"] else (" (demo voice)" if loaded["demo"] else "")
        sys.stderr.write(f"lavanya: {loaded['voice']}{tag} from {loaded['root']}\n")
    where = results[0]["output"] if len(results) == 1 else f"{len(results)} files"
    if where == STDOUT:
        where = "standard output"
    sys.stderr.write(f"lavanya: {summary['audio_seconds']:.2f} s of audio in {summary['wall_seconds']:.1f} s "
                     f"-> {where}\n")


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
