#!/usr/bin/env python3
"""Build a random-weight hindi/male voice with the real architecture into DIR, to benchmark on.

Usage: python scripts/make_bench_voice.py DIR [--shared PATH]
--shared defaults to ../shared/iitm-fs2hs/main beside the clone; when it is absent the real
sizes embedded in lavanya_cli.bench.bench_voice are used. Then, for example:
    lavanya bench --models DIR --compare all --busy
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path, help="new model root to create")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="upstream main tree, if present")
    args = parser.parse_args()
    if args.directory.exists() and any(args.directory.iterdir()):
        print(f"make_bench_voice: {args.directory}: exists and is not empty", file=sys.stderr)
        return 2
    from lavanya_cli.bench.bench_voice import MODEL_DIR, VOCODER_DIR, build_bench_voice

    shared = args.shared if args.shared.is_dir() else None
    root = build_bench_voice(args.directory, shared)
    weights = root / MODEL_DIR / "model.pth"
    generator = root / VOCODER_DIR / "generator"
    source = f"config from {shared}" if shared else "embedded real sizes"
    print(f"{root}: hindi/male, {source}; model.pth {weights.stat().st_size / 1e6:.1f} MB, "
          f"generator {generator.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
