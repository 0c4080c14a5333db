"""Moved to ``lavanya_cli.checks.verify``; this import path stays for scripts that use it."""

from .checks.problems import Problem  # noqa: F401
from .checks.verify import verify_root, write_manifests  # noqa: F401
