"""Moved to ``lavanya_cli.modeltree.config`` (reading) and ``lavanya_cli.checks.config_fix``
(``fix-config``); this import path stays for scripts that use it. ``ConfigFix`` is now
``lavanya_cli.checks.problems.FileFix``, the outcome of every repair."""

from .checks.config_fix import fix_config, fix_stats_paths_text  # noqa: F401
from .checks.problems import FileFix as ConfigFix  # noqa: F401
from .modeltree.config import STATS_ENTRIES, read_config, sample_rate, stats_file_entries  # noqa: F401
