#!/usr/bin/env python3
"""Time ``lavanya verify`` over a model root, process start to exit, and print the median.

Usage: python scripts/bench_verify.py [ROOT] [--runs N]
ROOT defaults to ../shared/iitm-fs2hs/main beside the clone (31 voices, weights as LFS pointers).
The target is well under a second; this script reports and asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not args.root.is_dir():
        print(f"bench_verify: {args.root}: not a directory", file=sys.stderr)
        return 2
    executable = shutil.which("lavanya")
    command = [executable] if executable else [sys.executable, "-c", "from lavanya_cli.cli import run; run()"]
    command += ["verify", str(args.root)]
    timings = []
    for _ in range(args.runs + 1):  # the first run warms the file cache and is not counted
        start = time.perf_counter()
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        timings.append(time.perf_counter() - start)
    summary = result.stdout.decode().strip().splitlines()[-1] if result.stdout else ""
    counted = timings[1:]
    print(f"lavanya verify {args.root}: exit {result.returncode}, {summary.split(': ', 1)[-1]}")
    print(f"median {statistics.median(counted):.3f} s over {len(counted)} runs "
          f"(min {min(counted):.3f} s, max {max(counted):.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
