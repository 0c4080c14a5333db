"""``lavanya fix-perms``: model files 644, directories 755, service output directories 2775."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import EXIT_OK, EXIT_PROBLEMS
from .app import ModelsOption, OutputFormat, app, pick_root
from .output import echo, error_line, print_json


@app.command("fix-perms")
def fix_perms(
    root: Optional[Path] = typer.Argument(None, help="Model root to fix.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    writable: List[Path] = typer.Option(
        [], "--writable", help="Output directory the service writes to (repeatable; created if missing)."),
    loosen_private: bool = typer.Option(
        False, "--loosen-private", help="Also open up files private to their owner (mode 600/700) "
                                        "to the group and others; without it they stay private."),
    check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 when something would change."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text or json."),
) -> None:
    """Set model files to 644 and directories to 755; writable output directories to 2775 (664 files).

    Every change that gives the group or others an access they did not have says so. Exit 1
    when something could not be changed: a symlink out of the tree, a file with hard links
    elsewhere, a directory that cannot be listed (or, with --check, anything to change).
    """
    from ..checks.permissions import apply_permissions, plan_permissions

    plan = plan_permissions(pick_root(root, models), writable, loosen_private=loosen_private)
    failures = [] if check else apply_permissions(plan.changes)
    if format is OutputFormat.json:
        print_json({
            "applied": not check,
            "changes": [{"path": str(c.path), "old": None if c.old is None else f"{c.old:04o}",
                         "new": f"{c.new:04o}", "loosens": c.loosens} for c in plan.changes],
            "kept": [{"path": str(k.path), "code": k.code, "message": k.message} for k in plan.kept],
            "problems": [{"path": str(p.path), "code": p.code, "message": p.message} for p in plan.problems],
            "failures": failures,
        })
    else:
        prefix = "would change " if check else ""
        for change in plan.changes:
            echo(prefix + change.describe())
        for kept in plan.kept:
            echo(kept.describe())
        for problem in plan.problems:
            error_line(problem.describe())
        for failure in failures:
            error_line(failure)
        if not plan.changes and not plan.problems and not plan.kept:
            echo("permissions already right")
    failed = failures or plan.problems or (check and plan.changes)
    raise typer.Exit(EXIT_PROBLEMS if failed else EXIT_OK)
