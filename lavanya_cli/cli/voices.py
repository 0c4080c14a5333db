"""``lavanya voices``: the voices a model root holds, or every root synthesis would look in."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import app, pick_root
from .options import FormatOption, ModelsOption
from .output import Output, PlainFormat, Result

COLUMNS = ["voice", "rate", "weights", "vocoder", "auto engine", "model directory", "root"]


@app.command()
def voices(
    root: Optional[Path] = typer.Argument(None, help="Model root to list.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    format: PlainFormat = FormatOption,
) -> None:
    """List the voices: sample rate, weights state, vocoder, the engine auto chose for the voice
    on this machine (measured the first time it loads; "-" until then) and the root each came from.

    Without ROOT or --models, every root synth looks in is listed, in the order it looks:
    $LAVANYA_MODELS, ./Fastspeech2_HS, the bundled demo tree. Exit status 0, 1 when a directory
    could not be listed (its voices are missing from the list), 2 when no root holds a voice.
    """
    from ..checks.problems import Problem
    from ..modeltree.inventory import describe_voice
    from ..modeltree.layout import ModelRoot, candidate_roots, resolve_root
    from ..speech.engine_choice import kept_choices, voice_place

    named = root is not None or models is not None
    roots = [ModelRoot(path) for path in ([pick_root(root, models)] if named else candidate_roots())]
    if not roots:
        resolve_root()  # raises the error that says where lavanya looked
    specs = [voice for model_root in roots for voice in model_root.voices()]
    rows = [describe_voice(voice) for voice in specs]
    chosen = kept_choices()
    for spec, row in zip(specs, rows):
        choice = chosen.get(voice_place(spec))
        row["auto_engine"] = None if choice is None else {"engine": choice.engine, "reason": choice.reason}
    if not rows:
        roots[0].require_voices()  # raises "no voices found" unless a directory could not be listed
    problems = [Problem(str(directory), "unreadable", f"{reason}; voices in it are not listed",
                        "make it readable (lavanya fix-perms, or chmod 755)")
                for model_root in roots for directory, reason in model_root.unreadable]
    Output(format, "voices").finish(Result(data=rows, table=(COLUMNS, [_cells(row) for row in rows]),
                                           problems=problems, problems_to_stderr=True))


def _cells(row: dict) -> list[str]:
    voice = row["language"] + "/" + row["gender"]
    if row["variant"]:
        voice += f" ({row['variant']})"
    if row["demo"]:
        voice += " [bundled demo]" if row["bundled"] else " [demo]"
    vocoder = row["vocoder"] + ("" if row["vocoder_state"] == "present" else f" ({row['vocoder_state']})")
    auto = row["auto_engine"]["engine"] if row["auto_engine"] else "-"
    return [voice, str(row["sample_rate"] or "?"), row["weights"], vocoder, auto, row["model_dir"], row["root"]]
