"""``lavanya export``: voices to ONNX for the torch-free engine, into the cache or a deploy root."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import EXIT_PROBLEMS, EXIT_USAGE, LavanyaError
from ..fileio import format_size
from .app import app
from .options import FormatOption, ModelsOption, gender_option, lang_option, variant_option
from .output import Output, PlainFormat, Result


@app.command()
def export(
    lang: Optional[str] = lang_option(None),
    gender: Optional[str] = gender_option(None),
    variant: Optional[str] = variant_option(),
    all_voices: bool = typer.Option(False, "--all", help="Every voice of the model root that has weights."),
    models: Optional[Path] = ModelsOption,
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False,
                                       help="Write a deploy root here (graphs, configs, statistics, front-end "
                                            "files; no model.pth or generator) instead of only the cache."),
    precision: str = typer.Option("f32", "--precision", metavar="f32|int8",
                                  help="The acoustic model's weights: f32, or int8 (made from the f32 export with "
                                       "onnx, no torch; served only where its guard finds it close to f32)."),
    converter: str = typer.Option("auto", "--converter", metavar="auto|templates|torch",
                                  help="How the graphs are made: auto fills the graph templates shipped with lavanya "
                                       "where the voice fits them (every published voice; no torch) and exports "
                                       "through torch otherwise; templates or torch uses only that way."),
    format: PlainFormat = FormatOption,
) -> None:
    """Export voices to ONNX once, so synthesis loads graphs, never checkpoints."""
    from ..speech.options import CONVERTERS, INT8, PRECISIONS, TORCH

    if all_voices == (lang is not None or gender is not None):
        raise LavanyaError("give --lang and --gender, or --all")
    if not all_voices and (lang is None or gender is None):
        raise LavanyaError("give both --lang and --gender (see lavanya voices)")
    if precision not in PRECISIONS:
        raise LavanyaError(f"--precision {precision!r}: use {' or '.join(PRECISIONS)}")
    if converter not in CONVERTERS:
        raise LavanyaError(f"--converter {converter!r}: use {', '.join(CONVERTERS)}")
    if converter == TORCH:
        _require_torch()
    if precision == INT8:
        from ..speech.quantize import require_onnx

        require_onnx()
    from ..modeltree.layout import ModelRoot, find_voice, resolve_root
    from ..modeltree.lfs_pointer import FileState, probe
    from ..speech import export as exporter
    from ..modeltree.weights import require_weights

    skipped: list[dict[str, str]] = []
    if all_voices:
        specs = []
        for spec in ModelRoot(resolve_root(models)).voices():
            if probe(spec.weights_path).state is FileState.PRESENT:
                specs.append(spec)
            else:
                skipped.append({"voice": spec.name, "reason": "no weights (missing or an LFS pointer)"})
    else:
        specs = [find_voice(lang, gender, variant, models, require=require_weights)]

    results, failed = [], 0
    for spec in specs:
        try:
            prepare = functools.partial(exporter.ensure_exports, converter=converter)
            if precision == INT8:
                from ..speech.quantize import ensure_int8_exports

                prepare = functools.partial(ensure_int8_exports, converter=converter)
            if out is not None:
                (entry,) = exporter.write_deploy_root([spec], out, prepare=prepare)
            else:
                outcome = prepare(spec, None)
                entry = {"voice": spec.name, "made": outcome.made,
                         "converters": {"acoustic": outcome.acoustic.converter, "vocoder": outcome.vocoder.converter},
                         "acoustic_dir": str(outcome.acoustic.directory),
                         "vocoder_dir": str(outcome.vocoder.directory),
                         "check": {"acoustic": outcome.acoustic.manifest.get("check"),
                                   "vocoder": outcome.vocoder.manifest.get("check")},
                         **exporter.acoustic_summary(outcome.acoustic)}
        except LavanyaError as exc:
            if not all_voices:
                raise
            failed += 1
            entry = {"voice": spec.name, "error": exc.message}
        results.append(entry)

    Output(format, "export").finish(Result(
        data={"voices": results, "skipped": skipped},
        lines=[_line(entry) for entry in results]
        + [f"{entry['voice']}: skipped, {entry['reason']}" for entry in skipped],
        exit_code=EXIT_PROBLEMS if failed else None,
    ))


def _line(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"{entry['voice']}: failed: {entry['error']}"
    made = (f"exported {' and '.join(name.replace('acoustic-int8', 'int8 acoustic') for name in entry['made'])}"
            if entry["made"] else "export up to date")
    if "model_dir" in entry:
        return (f"{entry['voice']}: {made}; deployed to {entry['model_dir']} ({format_size(entry['bytes'])} with its "
                f"vocoder){_precision_text(entry)}")
    return (f"{entry['voice']}: {made} in {Path(entry['acoustic_dir']).parent.parent} "
            f"({_check_text(entry)}){_precision_text(entry)}")


def _check_text(entry: dict[str, Any]) -> str:
    """How the exports were made and checked: against torch, or (filled graph templates, where
    there is no torch) run through the engine with every output finite."""
    from ..speech.options import TEMPLATES

    acoustic, vocoder = entry["check"]["acoustic"] or {}, entry["check"]["vocoder"] or {}
    if entry["converters"]["acoustic"] == TEMPLATES:
        parts = [f"acoustic model from the graph templates, finite on {acoustic.get('sentences')} sentences"]
    else:
        parts = [f"mel within {acoustic.get('mel_max_abs', float('nan')):.2g} of torch"]
    if entry["converters"]["vocoder"] == TEMPLATES:
        parts.append("vocoder from the graph templates, finite")
    else:
        parts.append(f"waveform {vocoder.get('waveform_snr_db_min') or 'inf'} dB SNR against torch")
    return ", ".join(parts)


def _precision_text(entry: dict[str, Any]) -> str:
    """The end of a voice's line: its acoustic model's precision and size, and where int8 was
    asked for, the guard's figures against f32 or the note that f32 is served."""
    text = f"; acoustic model {entry['precision']}, {format_size(entry['acoustic_bytes'])}"
    guard = entry.get("guard")
    if entry.get("note"):
        return f"{text}: {entry['note']}"
    if guard:
        text += (f" (guard against f32: {guard['durations_equal']:.0%} of durations equal, frames "
                 f"{guard['frames_difference']:.1%} off, mel error {guard['mel_mean_abs_max']:.3g}, audio "
                 f"{guard['snr_db_min'] or 'inf'} dB SNR)")
    return text


def _require_torch() -> None:
    """One line, not a traceback, where the export's libraries are missing."""
    from ..speech.options import EXPORT_LIBRARIES

    missing = [name for name in EXPORT_LIBRARIES if importlib.util.find_spec(name) is None]
    if missing:
        raise LavanyaError(f"--converter torch needs torch, ESPnet and onnx ({', '.join(missing)} not installed): "
                           "python3 -m pip install 'lavanya[torch]'", EXIT_USAGE)


__all__ = ["export"]
