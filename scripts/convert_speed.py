#!/usr/bin/env python3
"""Time and memory of making a voice's ONNX exports: the graph templates (no torch) against the
torch export, in fresh processes, interleaved (templates, torch, templates, torch ...), each
into an empty cache.

Usage: python scripts/convert_speed.py MODELS --lang hindi --gender male [--runs 3]
MODELS is a model root with real-size weights (scripts/make_bench_voice.py makes one). Reports,
per converter, the median and range of the export's own seconds (imports apart), the whole
process's seconds and its peak RSS, and the weights' size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
from pathlib import Path
from lavanya_cli.modeltree.layout import find_voice
from lavanya_cli.speech.export import ensure_exports
spec = find_voice(sys.argv[2], sys.argv[3], None, Path(sys.argv[1]))
started = time.perf_counter()
outcome = ensure_exports(spec, Path(sys.argv[4]), converter=sys.argv[5])
print(json.dumps({"seconds": time.perf_counter() - started, "converters": outcome.converters,
                  "weights": spec.weights_path.stat().st_size + spec.vocoder.generator_path.stat().st_size}))
"""


def run_once(models: Path, lang: str, gender: str, converter: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="lavanya-convert-speed-") as cache:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", CHILD, str(models), lang, gender, cache, converter],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        out, err = process.stdout.read(), process.stderr.read()
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{converter}: exit {process.returncode}: {err.strip()[-500:]}")
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "process_seconds": wall, "peak_rss": usage.ru_maxrss * 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path)
    parser.add_argument("--lang", default="hindi")
    parser.add_argument("--gender", default="male")
    parser.add_argument("--runs", type=int, default=3, help="pairs of runs (default %(default)s)")
    parser.add_argument("--converters", default="templates,torch")
    args = parser.parse_args()
    converters = args.converters.split(",")
    results: dict[str, list[dict]] = {name: [] for name in converters}
    load = os.getloadavg()[0]
    for _ in range(args.runs):
        for name in converters:
            results[name].append(run_once(args.models, args.lang, args.gender, name))
    print(f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} CPUs")
    weights = next(iter(results.values()))[0]["weights"]
    print(f"weights (model.pth + generator): {weights / 1e6:.1f} MB")
    for name, runs in results.items():
        def spread(key: str, scale: float = 1.0) -> str:
            values = sorted(run[key] / scale for run in runs)
            return f"{statistics.median(values):.2f} ({values[0]:.2f}-{values[-1]:.2f})"
        peak = statistics.median(run["peak_rss"] for run in runs)
        print(f"{name}: export {spread('seconds')} s, process {spread('process_seconds')} s, "
              f"peak RSS {spread('peak_rss', 1e6)} MB = {peak / weights:.2f}x the weights; made by "
              f"{runs[0]['converters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
