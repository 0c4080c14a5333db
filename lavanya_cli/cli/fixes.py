"""What ``fix-stats`` and ``fix-config`` share: their targets and the per-file loop with its summary."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer

from ..errors import EXIT_OK, EXIT_PROBLEMS
from .app import pick_root
from .output import echo

TargetsArgument = typer.Argument(None, help="Model root, model directories or files (default: the model root).")
CheckOption = typer.Option(False, "--check", help="Change nothing; exit 1 if anything would change.")


def targets_or_root(targets: Optional[List[Path]], models: Optional[Path]) -> list[Path]:
    return list(targets) if targets else [pick_root(None, models)]


def run_fixes(targets: list, fix: Callable, check: bool) -> None:
    """Fix each target (``fix(path, root)``), print one line per file and a summary, exit 1 when
    anything is left to do or was refused (a target refused unread is reported the same way)."""
    counts = {"fixed": 0, "unchanged": 0, "refused": 0}
    for target in targets:
        if target.refused:
            result, reason = "refused", target.refused
        else:
            outcome = fix(target.path, target.root)
            result, reason = outcome.result, outcome.reason
        counts[result] += 1
        label = "would fix" if check and result == "fixed" else result
        echo(f"{target.path}: {label}" + (f" ({reason})" if reason else ""))
    verb = "would fix" if check else "fixed"
    echo(f"{counts['fixed']} {verb}, {counts['unchanged']} unchanged, {counts['refused']} refused")
    failed = counts["refused"] or (check and counts["fixed"])
    raise typer.Exit(EXIT_PROBLEMS if failed else EXIT_OK)
