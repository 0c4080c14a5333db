"""Moved to ``lavanya_cli.checks.verify``; this import path stays for scripts that use it."""

from .checks.verify import Problem, verify_root, write_manifests  # noqa: F401
