"""``lavanya voices``: what a model root holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import EXIT_OK, EXIT_PROBLEMS
from .app import ModelsOption, OutputFormat, app, pick_root
from .output import error_line, print_json, printable, stdout


@app.command()
def voices(
    root: Optional[Path] = typer.Argument(None, help="Model root to list.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """List the voices in a model root: sample rate, weights state and vocoder.

    Exit status 0, 1 when a directory could not be listed (its voices are missing from the
    list), 2 when the root holds no voices at all.
    """
    from ..modeltree.inventory import describe_voices
    from ..modeltree.layout import ModelRoot

    model_root = ModelRoot(pick_root(root, models))
    rows = describe_voices(model_root)
    for directory, reason in model_root.unreadable:
        error_line(f"{directory}: {reason}; voices in it are not listed: make it readable "
                   "(lavanya fix-perms, or chmod 755)")
    status = EXIT_PROBLEMS if model_root.unreadable else EXIT_OK
    if format is OutputFormat.json:
        print_json(rows)
        raise typer.Exit(status)
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("voice", "rate", "weights", "vocoder", "model directory"):
        table.add_column(column)
    for row in rows:
        voice = row["language"] + "/" + row["gender"]
        if row["variant"]:
            voice += f" ({row['variant']})"
        if row["demo"]:
            voice += " [bundled demo]" if row["bundled"] else " [demo]"
        rate = str(row["sample_rate"] or "?")
        vocoder = row["vocoder"] + ("" if row["vocoder_state"] == "present" else f" ({row['vocoder_state']})")
        table.add_row(*(escape(printable(cell)) for cell in (voice, rate, row["weights"], vocoder, row["model_dir"])))
    if rows:
        stdout.print(table)
    raise typer.Exit(status)
