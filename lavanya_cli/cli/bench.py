"""``lavanya bench``: how fast a voice loads and speaks through an engine, and how the engines and
the upstream way compare in fresh processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .app import app
from .options import (EngineOption, FormatOption, ModelsOption, TextOption, ThreadsOption, gender_option,
                      lang_option, variant_option)
from .output import Output, PlainFormat, Result, warning_line


@app.command()
def bench(
    lang: str = lang_option("hindi"),
    gender: str = gender_option("male"),
    variant: Optional[str] = variant_option(),
    models: Optional[Path] = ModelsOption,
    text_option: Optional[str] = TextOption,
    sentences: Optional[int] = typer.Option(None, "--sentences",
                                            help="How many built-in sentences to speak (1-5; default 1)."),
    runs: int = typer.Option(3, "--runs", help="Warm runs averaged for the real-time factor; with --compare, "
                                               "also the fresh processes per figure (the median is reported)."),
    threads: Optional[int] = ThreadsOption,
    engine: str = EngineOption,
    compare: Optional[str] = typer.Option(
        None, "--compare", metavar="LIST",
        help="Instead of measuring here, compare in fresh processes: some of upstream,torch,onnx,openvino "
             "(comma-separated), or all (every one that can run here). Start to WAV for 1 and 5 built-in "
             "sentences, peak RSS, warm real-time factor."),
    busy: bool = typer.Option(False, "--busy", help="With --compare: measure again with another process "
                                                    "spinning on one core."),
    compare_upstream: bool = typer.Option(False, "--compare-upstream",
                                          help="Also run lavanya synth and the upstream way in fresh processes."),
    format: PlainFormat = FormatOption,
) -> None:
    """Load time, first-call latency, warm real-time factor and peak memory of a voice.

    Without --text it speaks built-in Hindi sentences (--sentences of them).
    """
    from ..errors import LavanyaError
    from ..speech.options import AUTO, FindOptions, LoadOptions

    if runs < 1:
        raise LavanyaError("--runs must be 1 or more")
    if compare is not None:
        if compare_upstream or engine != AUTO or text_option is not None or sentences is not None:
            raise LavanyaError("--compare speaks the built-in 1 and 5 sentences through the engines it names; "
                               "drop --compare-upstream, --engine, --text and --sentences")
    elif busy:
        raise LavanyaError("--busy goes with --compare")
    options = LoadOptions(engine=engine, threads=threads)
    threads = options.threads
    if options.threads_note:
        warning_line(options.threads_note)
    if compare is not None:
        report = _compare(compare, lang, gender, variant, models, runs, busy, threads)
        Output(format, "bench").finish(Result(data=report, lines=_comparison_lines(report),
                                              table=_comparison_table(report),
                                              summary=_comparison_summary(report)))
    from ..bench.measure import bench_in_process, default_text

    text = text_option if text_option is not None else default_text(1 if sentences is None else sentences)
    comparison = None
    if compare_upstream:  # before this process grows: a child's peak RSS starts from its parent's
        from ..bench.compare import compare_upstream as compare_pair

        comparison = compare_pair(_find_spec(lang, gender, variant, models), text, threads, engine)
    report = bench_in_process(lang, gender, text, runs, find=FindOptions(models=models, variant=variant),
                              options=options)
    if comparison is not None:
        report["compare_upstream"] = comparison
    Output(format, "bench").finish(Result(data=report, lines=_report_lines(report)))


def _find_spec(lang: str, gender: str, variant: Optional[str], models: Optional[Path]):
    from ..modeltree.layout import find_voice
    from ..modeltree.weights import require_weights

    return find_voice(lang, gender, variant, models, require=require_weights)


def _compare(names: str, lang: str, gender: str, variant: Optional[str], models: Optional[Path], runs: int,
             busy: bool, threads: Optional[int]) -> dict[str, Any]:
    """The engines ``names`` asks for, compared; no voice is loaded in this process."""
    from ..bench.compare import choose_engines, compare_engines

    engines, left_out = choose_engines(names)
    for name, reason in left_out.items():
        warning_line(f"--compare all: left out {name}: {reason}")
    report = compare_engines(_find_spec(lang, gender, variant, models), engines, runs=runs, busy=busy,
                             threads=threads)
    return {**report, "left_out": left_out}


def _report_lines(report: dict) -> list[str]:
    lines = [
        f"{report['voice']} from {report['root']} ({report['engine']} engine): {report['sentences']} "
        f"sentence(s), {report['audio_seconds']:.2f} s of audio",
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


def _comparison_lines(report: dict) -> list[str]:
    load = report["load_average"]
    return [f"{report['voice']} from {report['root']}: fresh processes, median of {report['runs']} run(s) each; "
            f"load average {'/'.join(map(str, load['before']))} before, {'/'.join(map(str, load['after']))} after"]


def _comparison_table(report: dict) -> tuple[list[str], list[list[str]]]:
    from ..bench.compare import SENTENCE_COUNTS

    with_upstream = any(row["vs_upstream"] for row in report["rows"])
    headers = ["engine", "condition", *(f"{count} sentence(s) s" for count in SENTENCE_COUNTS),
               "peak RSS MB", "warm RTF"] + (["upstream ÷ this (1 / 5 / RSS)"] if with_upstream else [])
    rows = []
    for row in report["rows"]:
        cells = [row["engine"], row["condition"],
                 *(f"{row[f'sentences_{count}']['start_to_wav_seconds']:.2f}" for count in SENTENCE_COUNTS),
                 f"{row['peak_rss_mb']:.0f}",
                 "-" if row["warm_real_time_factor"] is None else f"{row['warm_real_time_factor']:.3f}"]
        if with_upstream:
            ratios = row["vs_upstream"]
            cells.append(" / ".join(f"{value:.2f}x" for value in ratios.values()) if ratios else "-")
        rows.append(cells)
    return headers, rows


def _comparison_summary(report: dict) -> list[str]:
    lines = ["seconds: process start to WAV written; warm RTF: compute seconds per audio second, "
             "5 sentences spoken again in one process"]
    if report["busy_cpu"] is not None:
        lines.append(f"busy: another process spinning on CPU {report['busy_cpu']}")
    return lines
