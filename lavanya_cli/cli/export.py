"""``lavanya export``: voices to ONNX for the torch-free engine, into the cache or a deploy root."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_PROBLEMS, EXIT_USAGE, LavanyaError
from .app import ModelsOption, OutputFormat, app
from .output import print_json, stdout


@app.command()
def export(
    lang: Optional[str] = typer.Option(None, "--lang", help="Voice language, e.g. hindi."),
    gender: Optional[str] = typer.Option(None, "--gender", help="male or female."),
    variant: Optional[str] = typer.Option(None, "--variant", help="Voice variant, e.g. latest, bilingual."),
    all_voices: bool = typer.Option(False, "--all", help="Every voice of the model root that has weights."),
    models: Optional[Path] = ModelsOption,
    out: Optional[Path] = typer.Option(None, "--out", file_okay=False,
                                       help="Write a deploy root here (graphs, configs, statistics, front-end "
                                            "files; no model.pth or generator) instead of only the cache."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Export voices to ONNX once, checked against torch, so synthesis needs no torch."""
    if all_voices == (lang is not None or gender is not None):
        raise LavanyaError("give --lang and --gender, or --all")
    if not all_voices and (lang is None or gender is None):
        raise LavanyaError("give both --lang and --gender (see lavanya voices)")
    _require_torch()
    from ..modeltree.layout import ModelRoot, find_voice, resolve_root
    from ..modeltree.lfs_pointer import file_state
    from ..speech import export as exporter
    from ..speech.voice import require_weights

    skipped: list[dict[str, str]] = []
    if all_voices:
        specs = []
        for spec in ModelRoot(resolve_root(models)).voices():
            if file_state(spec.weights_path)[0] == "present":
                specs.append(spec)
            else:
                skipped.append({"voice": spec.name, "reason": "no weights (missing or an LFS pointer)"})
    else:
        specs = [find_voice(lang, gender, variant, models, require=require_weights)]

    results, failed = [], 0
    for spec in specs:
        try:
            if out is not None:
                (entry,) = exporter.write_deploy_root([spec], out)
            else:
                outcome = exporter.ensure_exports(spec)
                entry = {"voice": spec.name, "made": outcome.made, "acoustic_dir": str(outcome.acoustic.directory),
                         "vocoder_dir": str(outcome.vocoder.directory)}
                entry["check"] = {"acoustic": outcome.acoustic.manifest.get("check"),
                                  "vocoder": outcome.vocoder.manifest.get("check")}
        except LavanyaError as exc:
            if not all_voices:
                raise
            failed += 1
            entry = {"voice": spec.name, "error": exc.message}
        results.append(entry)

    if format is OutputFormat.json:
        print_json({"voices": results, "skipped": skipped})
    else:
        for entry in results:
            stdout.print(_line(entry), markup=False, highlight=False)
        for entry in skipped:
            stdout.print(f"{entry['voice']}: skipped, {entry['reason']}", markup=False, highlight=False)
    if failed:
        raise typer.Exit(EXIT_PROBLEMS)


def _line(entry: dict) -> str:
    if "error" in entry:
        return f"{entry['voice']}: failed: {entry['error']}"
    made = f"exported {' and '.join(entry['made'])}" if entry["made"] else "export up to date"
    if "model_dir" in entry:
        return f"{entry['voice']}: {made}; deployed to {entry['model_dir']} ({entry['bytes'] / 1e6:.1f} MB with its vocoder)"
    acoustic, vocoder = entry["check"]["acoustic"] or {}, entry["check"]["vocoder"] or {}
    return (f"{entry['voice']}: {made} in {Path(entry['acoustic_dir']).parent.parent} "
            f"(mel within {acoustic.get('mel_max_abs', float('nan')):.2g} of torch, waveform "
            f"{vocoder.get('waveform_snr_db_min') or 'inf'} dB SNR)")


def _require_torch() -> None:
    """One line, not a traceback, where the export's libraries are missing."""
    import importlib.util

    missing = [name for name in ("torch", "espnet2", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        raise LavanyaError(f"lavanya export needs torch, ESPnet and onnxruntime ({', '.join(missing)} not installed): "
                           "python3 -m pip install 'lavanya[synth]'", EXIT_USAGE)


__all__ = ["export"]
