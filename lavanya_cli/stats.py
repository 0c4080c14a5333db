"""Moved to ``lavanya_cli.checks.stats``; this import path stays for scripts that use it.
``StatsFix`` is now ``lavanya_cli.checks.problems.FileFix``, the outcome of every repair."""

from .checks.problems import FileFix as StatsFix  # noqa: F401
from .checks.stats import StatsCheck, fix_stats, inspect_stats, load_stats  # noqa: F401
