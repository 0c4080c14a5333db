#!/usr/bin/env python3
"""Throughput of one batch: the single-process ``lavanya synth --lines`` against the same lines on
a private local Ray (``--ray local``), and what Ray costs per job.

Usage: python scripts/bench_ray.py [--models DIR] [--sentences 200] [--cpus N] [--threads 1]
                                   [--engine auto|onnx|openvino|torch]
Default voice: the bundled demo (small); for real sizes build one with
    python scripts/make_bench_voice.py /tmp/benchvoice-ray
and pass --models /tmp/benchvoice-ray. The texts are the bench's five Hindi sentences in turn.
Every run speaks through ``--engine`` (default auto, as for synth); a voice without an export
is exported into the cache by the first single-process run.

Figures (one JSON document on stdout):
- single_process (the engine's default threads):
  start-to-last-WAV wall of a fresh ``lavanya synth`` process, its load and synthesis seconds
  and peak RSS (about what one actor needs, plus Ray's worker process).
- single_process_same_threads: the same with ``--threads`` as each actor has (default 1).
- identical_to_single_process_at_same_threads: every WAV against that run, byte for byte;
  largest_sample_difference_to_default_threads: against the default-threads run (float sums
  may depend on the thread count).
- ray: start-to-last-WAV wall with Ray's start (ray_init_seconds); overhead_seconds is the rest
  of the run beyond the busiest actor's own work (voice loads and synthesis): actor processes
  and their imports, scheduling, transfers, the last batches' uneven finish. Per job, it is
  what Ray costs over a perfectly spread single-process run.
- per_actor_jobs_per_second: jobs over the actors' synthesis seconds: the figure to scale by.
- load_average before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="model root with hindi/male (default: the bundled demo)")
    parser.add_argument("--sentences", type=int, default=200, help="jobs in the batch, one sentence each")
    parser.add_argument("--cpus", type=int, help="CPUs for the local Ray (default: all usable here)")
    parser.add_argument("--threads", type=int, default=1, help="threads per Ray actor")
    parser.add_argument("--engine", default="auto", help="auto, onnx, openvino or torch (default auto)")
    args = parser.parse_args()

    from lavanya_cli.bench.measure import DEFAULT_SENTENCES
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT
    from lavanya_cli.batch.jobs import jobs_from_lines
    from lavanya_cli.limits import available_cpus
    from lavanya_cli.batch.ray import RaySettings, ray_session, run_batch
    from lavanya_cli.speech.options import FindOptions, LoadOptions

    models = args.models or BUNDLED_ROOT
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lavanya-bench-ray-") as scratch:
        scratch_dir = Path(scratch)
        lines = scratch_dir / "lines.txt"
        text = "".join(DEFAULT_SENTENCES[i % len(DEFAULT_SENTENCES)] + "\n" for i in range(args.sentences))
        lines.write_text(text, encoding="utf-8")

        single = _single_process(models, lines, scratch_dir / "single", args.engine)
        same_threads = _single_process(models, lines, scratch_dir / "same-threads", args.engine, args.threads)

        settings = RaySettings(num_cpus=args.cpus, threads=args.threads)
        started = time.perf_counter()
        with ray_session(settings):
            ray_up = time.perf_counter()
            first_result: list[float] = []
            report = run_batch(jobs_from_lines(text, str(lines), Path(), "hindi", "male", None),
                               str(scratch_dir / "ray"), settings=settings,
                               find=FindOptions(models=models), options=LoadOptions(engine=args.engine),
                               on_result=lambda _: first_result or first_result.append(time.perf_counter()))
            finished = time.perf_counter()
        if report.failed:
            print(f"bench_ray: {len(report.failed)} jobs failed, first: {report.failed[0]['error']}", file=sys.stderr)
            return 1
        names = [f"{n:04d}.wav" for n in range(1, args.sentences + 1)]
        identical = all((scratch_dir / "ray" / name).read_bytes() == (scratch_dir / "same-threads" / name).read_bytes()
                        for name in names)
        difference = max(_largest_difference(scratch_dir / "ray" / name, scratch_dir / "single" / name)
                         for name in names)

    results, jobs = report.results, len(report.results)
    synthesis = sum(result["synthesis_seconds"] for result in results)
    busy: dict[str, float] = {}
    for result in results:
        busy[result["worker"]] = busy.get(result["worker"], 0.0) + result["load_seconds"] + result["synthesis_seconds"]
    run_wall = finished - ray_up
    overhead = run_wall - max(busy.values())
    figures = {
        "voice_root": str(models),
        "jobs": jobs,
        "audio_seconds": round(report.audio_seconds, 1),
        "cpus": args.cpus or available_cpus(),
        "engine": report.engine,
        "identical_to_single_process_at_same_threads": identical,
        "largest_sample_difference_to_default_threads": difference,
        "single_process": _describe(single, jobs, "engine default"),
        "single_process_same_threads": _describe(same_threads, jobs, args.threads),
        "ray": {
            "wall_seconds": round(finished - started, 2),
            "ray_init_seconds": round(ray_up - started, 2),
            "first_result_seconds": round(first_result[0] - ray_up, 2),
            "actors": report.actors,
            "threads_per_actor": report.threads,
            "jobs_per_second": round(jobs / (finished - started), 3),
            "voice_load_seconds_per_actor": round(sum(r["load_seconds"] for r in results) / report.actors, 2),
            "synthesis_seconds": round(synthesis, 2),
            "busiest_actor_seconds": round(max(busy.values()), 2),
            "overhead_seconds": round(overhead, 2),
            "overhead_per_job_seconds": round(overhead / jobs, 4),
        },
        "per_actor_jobs_per_second": round(jobs / synthesis, 3),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
    }
    print(json.dumps(figures, indent=2))
    return 0


def _single_process(models: Path, lines: Path, output_dir: Path, engine: str, threads: int | None = None) -> dict:
    """A fresh ``lavanya synth --lines`` process: its wall time and its JSON summary."""
    from lavanya_cli.bench.measure import run_process

    command = [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models", str(models),
               "--lang", "hindi", "--gender", "male", "--lines", str(lines), "--output-dir", str(output_dir),
               "--engine", engine, "--format", "json"]
    if threads:
        command += ["--threads", str(threads)]
    run = run_process(command, "lavanya synth --lines")
    return {"wall": run.wall_seconds, "peak_rss_mb": run.peak_rss_mb, **run.report}


def _describe(run: dict, jobs: int, threads) -> dict:
    return {"threads": threads, "wall_seconds": run["wall"], "load_seconds": run["load_seconds"],
            "synthesis_seconds": run["synthesis_seconds"], "jobs_per_second": round(jobs / run["wall"], 3),
            "peak_rss_mb": run["peak_rss_mb"]}


def _largest_difference(a: Path, b: Path) -> int | None:
    """The largest sample difference of two WAVs of this batch, None when their lengths differ."""
    import numpy as np

    first, second = (np.frombuffer(path.read_bytes()[44:], dtype="<i2").astype(np.int32) for path in (a, b))
    return int(np.abs(first - second).max()) if len(first) == len(second) else None


if __name__ == "__main__":
    sys.exit(main())
