"""``lavanya fix-perms``: model files 644, directories 755, service output directories 2775."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import EXIT_PROBLEMS
from .app import ModelsOption, OutputFormat, app, pick_root
from .output import error_line, print_json


@app.command("fix-perms")
def fix_perms(
    root: Optional[Path] = typer.Argument(None, help="Model root to fix.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    writable: List[Path] = typer.Option(
        [], "--writable", help="Output directory the service writes to (repeatable; created if missing)."),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 when something would change."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Set model files to 644 and directories to 755; writable output directories to 2775 (664 files)."""
    from ..checks.permissions import apply_permissions, plan_permissions

    changes = plan_permissions(pick_root(root, models), writable)
    failures = [] if check else apply_permissions(changes)
    if format is OutputFormat.json:
        print_json({
            "applied": not check,
            "changes": [{"path": str(c.path), "old": None if c.old is None else f"{c.old:04o}",
                         "new": f"{c.new:04o}"} for c in changes],
            "failures": failures,
        })
    else:
        prefix = "would change " if check else ""
        for change in changes:
            typer.echo(prefix + change.describe())
        for failure in failures:
            error_line(failure)
        if not changes:
            typer.echo("permissions already right")
    if failures or (check and changes):
        raise typer.Exit(EXIT_PROBLEMS)
