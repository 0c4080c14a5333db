"""Moved to ``lavanya_cli.checks.stats``; this import path stays for scripts that use it."""

from .checks.stats import StatsCheck, StatsFix, fix_stats, inspect_stats, load_stats  # noqa: F401
