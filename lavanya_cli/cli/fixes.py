"""What ``fix-stats`` and ``fix-config`` share: their targets and the per-file loop with its summary."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable, List, Optional

import typer

from .app import pick_root
from .output import Output, Result

TargetsArgument = typer.Argument(None, help="Model root, model directories or files (default: the model root).")


def targets_or_root(targets: Optional[List[Path]], models: Optional[Path]) -> list[Path]:
    return list(targets) if targets else [pick_root(None, models)]


def run_fixes(out: Output, targets: list, fix: Callable, check: bool, code: str, what: str) -> None:
    """Fix each target (``fix(path, root)``) and finish with one line per file and a summary.

    A file refused (or a target refused unread) is a ``refused`` problem; with ``check``, a file
    that would change is a problem too, with ``code`` (as verify names it), ``what`` is wrong
    with it, and the command that fixes it. Exit 1 when there is any problem.
    """
    from ..checks.problems import FIXED, REFUSED, UNCHANGED, FileFix, Problem

    outcomes = [FileFix(target.path, REFUSED, target.refused, target.fix) if target.refused else fix(target.path, target.root)
                for target in targets]
    lines, problems = [], []
    for outcome in outcomes:
        if outcome.result == REFUSED:
            problems.append(Problem(str(outcome.path), REFUSED, outcome.reason, outcome.fix))
        elif outcome.result == FIXED and check:
            problems.append(Problem(str(outcome.path), code, outcome.reason or what,
                                    f"lavanya {out.command} {shlex.quote(str(outcome.path))}"))
        else:
            lines.append(f"{outcome.path}: {outcome.result}" + (f" ({outcome.reason})" if outcome.reason else ""))
    counts = {result: sum(outcome.result == result for outcome in outcomes) for result in (FIXED, UNCHANGED, REFUSED)}
    verb = "would fix" if check else "fixed"
    out.finish(Result(
        data={"applied": not check, "files": [outcome.as_dict() for outcome in outcomes], **counts},
        lines=lines, problems=problems,
        summary=[f"{counts[FIXED]} {verb}, {counts[UNCHANGED]} unchanged, {counts[REFUSED]} refused"],
    ))
