"""``lavanya fix-config``: bare ``stats_file`` names in each ``config.yaml``, nothing else changed."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from .app import ModelsOption, app
from .fixes import CheckOption, TargetsArgument, run_fixes, targets_or_root


@app.command("fix-config")
def fix_config(
    targets: Optional[List[Path]] = TargetsArgument,
    models: Optional[Path] = ModelsOption,
    check: bool = CheckOption,
) -> None:
    """Point each config.yaml's stats_file entries at the stats beside it; change nothing else."""
    from ..checks.config_fix import fix_config as fix
    from ..checks.targets import config_targets

    run_fixes(config_targets(targets_or_root(targets, models)),
              lambda path, root: fix(path, check_only=check, root=root), check)
