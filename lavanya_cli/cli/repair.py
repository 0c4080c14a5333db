"""``lavanya fix-stats`` and ``lavanya fix-config``: repair what upstream ships broken."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

import typer

from .app import ModelsOption, app, pick_root
from .output import stdout

_TargetsArgument = typer.Argument(None, help="Model root, model directories or files (default: the model root).")
_CheckOption = typer.Option(False, "--check", help="Change nothing; exit 1 if anything would change.")


@app.command("fix-stats")
def fix_stats(
    targets: Optional[List[Path]] = _TargetsArgument,
    models: Optional[Path] = ModelsOption,
    check: bool = _CheckOption,
) -> None:
    """Rewrite pickled *_stats.npz as plain arrays (same keys, dtypes and values).

    Only numpy's own array reconstruction is ever unpickled; anything else is refused. LFS
    pointers, truncated and unknown files are reported and left alone.
    """
    from ..repair import stats_targets
    from ..stats import fix_stats as fix

    _run(stats_targets(_targets(targets, models)), lambda path: fix(path, check_only=check), check)


@app.command("fix-config")
def fix_config(
    targets: Optional[List[Path]] = _TargetsArgument,
    models: Optional[Path] = ModelsOption,
    check: bool = _CheckOption,
) -> None:
    """Point each config.yaml's stats_file entries at the stats beside it; change nothing else."""
    from ..config import fix_config as fix
    from ..repair import config_targets

    _run(config_targets(_targets(targets, models)), lambda path: fix(path, check_only=check), check)


def _targets(targets: Optional[List[Path]], models: Optional[Path]) -> list[Path]:
    return list(targets) if targets else [pick_root(None, models)]


def _run(paths: list[Path], fix: Callable, check: bool) -> None:
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
