"""Moved to ``lavanya_cli.checks.permissions``; this import path stays for scripts that use it."""

from .checks.permissions import ModeChange, apply_permissions, plan_permissions  # noqa: F401
