"""``lavanya bench``: how fast a voice loads and speaks, and how that compares with upstream's way."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app
from .options import FormatOption, ModelsOption, TextOption, ThreadsOption, gender_option, lang_option, variant_option
from .output import Output, PlainFormat, Result, warning_line


@app.command()
def bench(
    lang: str = lang_option("hindi"),
    gender: str = gender_option("male"),
    variant: Optional[str] = variant_option(),
    models: Optional[Path] = ModelsOption,
    text_option: Optional[str] = TextOption,
    sentences: int = typer.Option(1, "--sentences", help="How many built-in sentences to speak (1-5)."),
    runs: int = typer.Option(3, "--runs", help="Warm runs averaged for the real-time factor."),
    threads: Optional[int] = ThreadsOption,
    compare_upstream: bool = typer.Option(False, "--compare-upstream",
                                          help="Also run lavanya synth and the upstream way in fresh processes."),
    format: PlainFormat = FormatOption,
) -> None:
    """Load time, first-call latency, warm real-time factor and peak memory of a voice.

    Without --text it speaks built-in Hindi sentences (--sentences of them).
    """
    from ..bench.measure import bench_in_process, compare_upstream as compare, default_text
    from ..errors import LavanyaError
    from ..limits import usable_threads

    if runs < 1:
        raise LavanyaError("--runs must be 1 or more")
    threads, threads_note = usable_threads(threads)
    if threads_note:
        warning_line(threads_note)
    text = text_option if text_option is not None else default_text(sentences)
    comparison = None
    if compare_upstream:  # before this process grows: a child's peak RSS starts from its parent's
        from ..modeltree.layout import find_voice
        from ..speech.voice import require_weights

        spec = find_voice(lang, gender, variant, models, require=require_weights)
        comparison = compare(spec, text, threads)
    report = bench_in_process(lang, gender, text, runs, models=models, variant=variant, threads=threads)
    if comparison is not None:
        report["compare_upstream"] = comparison
    Output(format, "bench").finish(Result(data=report, lines=_report_lines(report)))


def _report_lines(report: dict) -> list[str]:
    lines = [
        f"{report['voice']} from {report['root']}: {report['sentences']} sentence(s), "
        f"{report['audio_seconds']:.2f} s of audio",
        f"  import libraries   {report['import_seconds']:8.2f} s",
        f"  load voice         {report['load_seconds']:8.2f} s",
        f"  first call         {report['first_call_seconds']:8.2f} s",
        f"  warm call          {report['warm_seconds']:8.2f} s  (real-time factor "
        f"{report['warm_real_time_factor']:.3f})",
        f"  peak RSS           {report['peak_rss_mb']:8.0f} MB",
    ]
    if "compare_upstream" in report:
        ours, theirs = report["compare_upstream"]["lavanya"], report["compare_upstream"]["upstream_way"]
        ratios = report["compare_upstream"]["ratios"]
        lines += [
            "fresh process, start to WAV:   lavanya synth   upstream way   ratio",
            f"  seconds                      {ours['start_to_wav_seconds']:12.2f}   "
            f"{theirs['start_to_wav_seconds']:12.2f}   {ratios['start_to_wav']:5.2f}x",
            f"  peak RSS (MB)                {ours['peak_rss_mb']:12.0f}   "
            f"{theirs['peak_rss_mb']:12.0f}   {ratios['peak_rss']:5.2f}x",
        ]
    return lines
