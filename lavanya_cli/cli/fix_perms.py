"""``lavanya fix-perms``: model files 644, directories 755, service output directories 2775."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer

from .app import app, pick_root
from .options import CheckFormatOption, CheckOption, ModelsOption
from .output import Output, OutputFormat, Result


@app.command("fix-perms")
def fix_perms(
    root: Optional[Path] = typer.Argument(None, help="Model root to fix.", file_okay=False),
    models: Optional[Path] = ModelsOption,
    writable: List[Path] = typer.Option(
        [], "--writable", help="Output directory the service writes to (repeatable; created if missing)."),
    loosen_private: bool = typer.Option(
        False, "--loosen-private", help="Also open up files private to their owner (mode 600/700) "
                                        "to the group and others; without it they stay private."),
    check: bool = CheckOption,
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Set model files to 644 and directories to 755; writable output directories to 2775 (664 files).

    Every change that gives the group or others an access they did not have says so. Exit 1
    when something could not be changed: a symlink out of the tree, a file with hard links
    elsewhere, a directory that cannot be listed (or, with --check, anything to change).
    """
    from ..checks.permissions import apply_permissions, plan_permissions
    from ..checks.problems import Problem

    plan = plan_permissions(pick_root(root, models), writable, loosen_private=loosen_private)
    failures = [] if check else apply_permissions(plan.changes)
    lines, problems = [], plan.problems + failures
    if check:
        rerun = "lavanya fix-perms" + (" --loosen-private" if loosen_private else "")
        rerun += "".join(f" --writable {shlex.quote(str(path))}" for path in writable)
        problems += [Problem(str(change.path), "permissions", f"would change: {change.what}", rerun)
                     for change in plan.changes]
    else:
        lines = [change.describe() for change in plan.changes]
    done = not plan.changes and not plan.problems and not plan.kept
    Output(format, "fix-perms").finish(Result(
        data={"applied": not check,
              "changes": [{"path": str(c.path), "old": None if c.old is None else f"{c.old:04o}",
                           "new": f"{c.new:04o}", "loosens": c.loosens} for c in plan.changes],
              "kept": [kept.as_dict() for kept in plan.kept]},
        lines=lines, problems=problems, warnings=list(plan.kept),
        summary=["permissions already right"] if done else [],
    ))
