"""``lavanya fix-config``: bare ``stats_file`` names in each ``config.yaml``, nothing else changed."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from .app import app
from .fixes import TargetsArgument, run_fixes, targets_or_root
from .options import CheckFormatOption, CheckOption, ModelsOption
from .output import Output, OutputFormat


@app.command("fix-config")
def fix_config(
    targets: Optional[List[Path]] = TargetsArgument,
    models: Optional[Path] = ModelsOption,
    check: bool = CheckOption,
    format: OutputFormat = CheckFormatOption,
) -> None:
    """Point each config.yaml's stats_file entries at the stats beside it; change nothing else."""
    from ..checks.config_fix import fix_config as fix
    from ..checks.targets import config_targets

    run_fixes(Output(format, "fix-config"), config_targets(targets_or_root(targets, models)),
              lambda path, root: fix(path, check_only=check, root=root), check,
              "stats-path", "stats_file entries are not the bare names of the statistics beside it")
