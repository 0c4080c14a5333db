"""``lavanya bench``: how fast a voice loads and speaks through an engine, and how the engines and
the upstream way compare in fresh processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

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
                                            help="How many built-in sentences to speak (1-5; default 1); with "
                                                 "--unrepeated, how many new ones each call speaks."),
    runs: int = typer.Option(3, "--runs", help="Warm runs for the real-time factor; with --compare, the rounds: "
                                               "fresh processes per figure (the median is reported)."),
    unrepeated: bool = typer.Option(False, "--unrepeated",
                                    help="Every call speaks sentences never spoken before in this process (a new "
                                         "length each time, as a server's requests), instead of the same text "
                                         "again: what a new input length costs then shows in the warm figure."),
    threads: Optional[int] = ThreadsOption,
    engine: str = EngineOption,
    compare: Optional[str] = typer.Option(
        None, "--compare", metavar="LIST",
        help="Instead of measuring here, compare in fresh processes, interleaved: some of "
             "upstream,torch,onnx,openvino,auto (comma-separated; auto: the engine measured for the voice "
             "here), or all (every one that can run here). Start to WAV for 1 and 5 built-in sentences, "
             "peak RSS, warm real-time factor over new sentences; every run in order with the load average before and after it."),
    busy: bool = typer.Option(False, "--busy", help="With --compare: measure again with another process "
                                                    "spinning on one core."),
    compare_upstream: bool = typer.Option(False, "--compare-upstream",
                                          help="Also run lavanya synth and the upstream way in fresh processes."),
    format: PlainFormat = FormatOption,
) -> None:
    """Load time, first-call latency, warm real-time factor and peak memory of a voice.

    Without --text it speaks built-in Hindi sentences (--sentences of them), or with
    --unrepeated new sentences every call.
    """
    from ..errors import LavanyaError
    from ..speech.options import AUTO, FindOptions, LoadOptions

    if runs < 1:
        raise LavanyaError("--runs must be 1 or more")
    if compare is not None:
        if compare_upstream or engine != AUTO or text_option is not None or sentences is not None or unrepeated:
            raise LavanyaError("--compare speaks the built-in 1 and 5 sentences through the engines it names, and "
                               "new sentences for the warm figure; drop --compare-upstream, --engine, --text, "
                               "--sentences and --unrepeated")
    elif busy:
        raise LavanyaError("--busy goes with --compare")
    elif unrepeated and (text_option is not None or compare_upstream):
        raise LavanyaError("--unrepeated makes up new sentences for every call; drop --text and --compare-upstream")
    options = LoadOptions(engine=engine, threads=threads)
    threads = options.threads
    if options.threads_note:
        warning_line(options.threads_note)
    if compare is not None:
        output = Output(format, "bench")
        report = _compare(compare, lang, gender, variant, models, runs, busy, threads,
                          lambda record: output.progress(run_line(record)))
        output.finish(Result(data=report, lines=_comparison_lines(report), table=_comparison_table(report),
                             summary=_comparison_summary(report)))
    from ..bench.measure import bench_in_process, default_text

    if unrepeated:
        if sentences is not None and sentences < 1:
            raise LavanyaError("--sentences must be 1 or more")
        text = None
    else:
        text = text_option if text_option is not None else default_text(1 if sentences is None else sentences)
    comparison = None
    if compare_upstream:  # before this process grows: a child's peak RSS starts from its parent's
        from ..bench.compare import compare_upstream as compare_pair

        comparison = compare_pair(_find_spec(lang, gender, variant, models), text, threads, engine)
    report = bench_in_process(lang, gender, text, runs, find=FindOptions(models=models, variant=variant),
                              options=options, unrepeated=(sentences or 1) if unrepeated else 0)
    if comparison is not None:
        report["compare_upstream"] = comparison
    Output(format, "bench").finish(Result(data=report, lines=_report_lines(report)))


def _find_spec(lang: str, gender: str, variant: Optional[str], models: Optional[Path]):
    from ..modeltree.layout import find_voice
    from ..modeltree.weights import require_weights

    return find_voice(lang, gender, variant, models, require=require_weights)


def _compare(names: str, lang: str, gender: str, variant: Optional[str], models: Optional[Path], runs: int,
             busy: bool, threads: Optional[int], progress: Callable[[dict], None]) -> dict[str, Any]:
    """The engines ``names`` asks for, compared; no voice is loaded in this process."""
    from ..bench.compare import choose_engines, compare_engines

    engines, left_out = choose_engines(names)
    for name, reason in left_out.items():
        warning_line(f"--compare all: left out {name}: {reason}")
    report = compare_engines(_find_spec(lang, gender, variant, models), engines, runs=runs, busy=busy,
                             threads=threads, progress=progress)
    return {**report, "left_out": left_out}


def _report_lines(report: dict) -> list[str]:
    unrepeated = report.get("mode") == "unrepeated"
    spoken = (f"{report['sentences']} new sentence(s) every call" if unrepeated
              else f"{report['sentences']} sentence(s), the same text every call")
    factors = report.get("warm_real_time_factor_range")
    lines = [
        f"{report['voice']} from {report['root']} ({report['engine']} engine): {spoken}, "
        f"{report['audio_seconds']:.2f} s of audio in the first call",
        f"  import libraries   {report['import_seconds']:8.2f} s",
        f"  load voice         {report['load_seconds']:8.2f} s",
        f"  first call         {report['first_call_seconds']:8.2f} s",
        f"  warm call          {report['warm_seconds']:8.2f} s  (real-time factor "
        f"{_number(report['warm_real_time_factor'], '.3f')}"
        + (f", calls {factors[0]:.3f} to {factors[1]:.3f}" if factors and len(report.get('calls', ())) > 2 else "")
        + f"; {report['warm_audio_seconds']:.2f} s of audio in {len(report['calls']) - 1} call(s))",
        f"  peak RSS           {report['peak_rss_mb']:8.0f} MB",
    ]
    if report.get("engine_choice"):
        lines.append(f"  auto chose {report['engine_choice']['engine']}: {report['engine_choice']['reason']}")
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


def _number(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _spread_cell(figure: Optional[dict], spec: str = ".2f") -> str:
    """``median (least-most)``, or the median alone from one run, or ``-``."""
    if not figure:
        return "-"
    median = format(figure["median"], spec)
    if figure["n"] < 2:
        return median
    return f"{median} ({format(figure['min'], spec)}-{format(figure['max'], spec)})"


def run_line(record: dict) -> str:
    """One run of a comparison as it ends: its place in the order, what ran, and the load."""
    from ..bench.compare import PREPARE, WARM

    if record["kind"] == WARM:
        what = f"warm, new sentences (RTF {_number(record.get('warm_real_time_factor'), '.3f')})"
    else:
        what = f"{record['sentences']} sentence(s) to WAV" + (", not counted" if record["kind"] == PREPARE else "")
    place = "prepare" if record["kind"] == PREPARE else f"round {record['round']}"
    spinner = ", core busy" if record["spinner"] else ""
    return (f"run {record['index']:3d}  {place:<8} {record['engine']:<9} {what:<44} {record['seconds']:7.2f} s "
            f"{record['peak_rss_mb']:6.0f} MB  load {record['load_before']:.2f} -> {record['load_after']:.2f}{spinner}")


def _comparison_lines(report: dict) -> list[str]:
    load = report["load_average"]
    return [f"{report['voice']} from {report['root']}: fresh processes, interleaved in {report['runs']} round(s) "
            f"({report['interleaving']}); median (least-most) of the rounds; {report['cores']} core(s); "
            f"load average {'/'.join(map(str, load['before']))} before, {'/'.join(map(str, load['after']))} after"]


def _comparison_table(report: dict) -> tuple[list[str], list[list[str]]]:
    from ..bench.compare import SENTENCE_COUNTS

    with_upstream = any(row["vs_upstream"] for row in report["rows"])
    headers = ["engine", "condition", *(f"{count} sentence(s) s" for count in SENTENCE_COUNTS),
               "peak RSS MB", "warm RTF", "first call s"] + (["upstream ÷ this (1 / 5 / RSS)"] if with_upstream else [])
    rows = []
    for row in report["rows"]:
        warm = row.get("warm") or {}
        cells = [row["engine"], row["condition"],
                 *(_spread_cell(row[f"sentences_{count}"]["start_to_wav_seconds"]) for count in SENTENCE_COUNTS),
                 f"{row['peak_rss_mb']:.0f}", _spread_cell(warm.get("real_time_factor"), ".3f"),
                 _spread_cell(warm.get("first_call_seconds"))]
        if with_upstream:
            ratios = row["vs_upstream"]
            cells.append(" / ".join(f"{ratios[key]:.2f}x" for key in (
                *(f"start_to_wav_{count}" for count in SENTENCE_COUNTS), "peak_rss")) if ratios else "-")
        rows.append(cells)
    return headers, rows


def _comparison_summary(report: dict) -> list[str]:
    from ..bench.compare import SENTENCE_COUNTS

    warm = report["warm"]
    limit = report["idle_load_per_core"]
    lines = ["seconds: process start to WAV written; warm RTF: compute seconds per audio second in a fresh "
             f"`lavanya bench --unrepeated`, {warm['calls']} calls after its first, each a sentence never spoken "
             "before in it (a new length every time); first call s: that process's first sentence"]
    for condition in report["conditions"]:
        first, last = condition["runs"]
        lines.append(
            f"{condition['name']} (runs {first}-{last}): 1-min load average {condition['load_start']:.2f} at the "
            f"start, {condition['load_end']:.2f} at the end, at most {condition['load_max']:.2f} = "
            f"{condition['load_max_per_core']:.2f} per core (idle only at or below {limit:.2f} per core all "
            f"through); this benchmark's own runs kept {_number(condition['children_cores_used'], '.2f')} "
            "core(s) busy on average, and count in it")
    if report["busy_cpu"] is not None:
        lines.append(f"core busy: another process spinning on CPU {report['busy_cpu']}")
    for row in report["rows"]:
        ratios = row["vs_upstream"]
        if ratios:
            rounds = ", ".join(f"{ratios[f'start_to_wav_{count}_rounds']['min']:.2f}x-"
                               f"{ratios[f'start_to_wav_{count}_rounds']['max']:.2f}x for {count}"
                               for count in SENTENCE_COUNTS)
            lines.append(f"{row['engine']}, {row['condition']}: upstream ÷ this in each round (side by side): {rounds}")
    return lines
