"""Moved to ``lavanya_cli.bench.upstream_way``; ``python -m lavanya_cli.upstream_way`` still runs it."""

import sys

from .bench.upstream_way import main

if __name__ == "__main__":
    sys.exit(main())
