"""What ``fix-stats`` and ``fix-config`` share: their targets and the per-file loop with its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer

from .app import pick_root
from .output import stdout

TargetsArgument = typer.Argument(None, help="Model root, model directories or files (default: the model root).")
CheckOption = typer.Option(False, "--check", help="Change nothing; exit 1 if anything would change.")


def targets_or_root(targets: Optional[List[Path]], models: Optional[Path]) -> list[Path]:
    return list(targets) if targets else [pick_root(None, models)]


def run_fixes(paths: list[Path], fix: Callable, check: bool) -> None:
    """Fix each file, print one line per file and a summary, exit 1 when anything is left to do."""
    counts = {"fixed": 0, "unchanged": 0, "refused": 0}
    for path in paths:
        outcome = fix(path)
        counts[outcome.result] += 1
        label = "would fix" if check and outcome.result == "fixed" else outcome.result
        line = f"{path}: {label}" + (f" ({outcome.reason})" if outcome.reason else "")
        stdout.print(line, markup=False, soft_wrap=True)
    verb = "would fix" if check else "fixed"
    stdout.print(f"{counts['fixed']} {verb}, {counts['unchanged']} unchanged, {counts['refused']} refused",
                 markup=False, soft_wrap=True)
    failed = counts["refused"] or (check and counts["fixed"])
    raise typer.Exit(1 if failed else 0)
