"""``lavanya voices``: what a model root holds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .app import ModelsOption, OutputFormat, app, pick_root
from .output import print_json, stdout


@app.command()
def voices(
    root: Optional[Path] = typer.Argument(None, help="Model root to list.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """List the voices in a model root: sample rate, weights state and vocoder."""
    from ..modeltree.inventory import describe_voices

    rows = describe_voices(pick_root(root, models))
    if format is OutputFormat.json:
        print_json(rows)
        return
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
        table.add_row(escape(voice), rate, row["weights"], vocoder, row["model_dir"])
    stdout.print(table)
    if not rows:
        stdout.print("no voices found")
