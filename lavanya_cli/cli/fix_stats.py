"""``lavanya fix-stats``: rewrite pickled statistics as plain arrays."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from .app import app
from .fixes import TargetsArgument, run_fixes, targets_or_root
from .options import CheckFormatOption, CheckOption, ModelsOption
from .output import Output, OutputFormat


@app.command("fix-stats")
def fix_stats(
    targets: Optional[List[Path]] = TargetsArgument,
    models: Optional[Path] = ModelsOption,
    check: bool = CheckOption,
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Rewrite pickled *_stats.npz as plain arrays (same keys, dtypes and values).

    Only numpy's own array reconstruction is ever unpickled; anything else is refused. LFS
    pointers, truncated and unknown files are reported and left alone.
    """
    from ..modeltree.stats import PICKLED
    from ..checks.stats import fix_stats as fix
    from ..checks.targets import stats_targets

    run_fixes(Output(format, "fix-stats"), stats_targets(targets_or_root(targets, models)),
              lambda path, root: fix(path, check_only=check, root=root), check,
              PICKLED, "holds pickled arrays")
