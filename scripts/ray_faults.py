"""A Ray batch under faults, on a two-node cluster on this machine: a worker node lost mid-run, and
the driver stopped by a signal. Each case counts what survives: WAVs written, WAVs recorded in the
results manifest, what the rerun redoes, temporary files left, and whether anything but
lavanya's own lines reached the console. ``tests/test_ray_faults.py`` runs it on the tiny test
voices; docs/ray.md quotes it on a real-size voice.

    python scripts/ray_faults.py --models /tmp/benchvoice --jobs 80
    python scripts/ray_faults.py --jobs 40          # tiny random-weight voices, built here

The cluster is Ray's own test cluster (``ray.cluster_utils.Cluster``): a head and a worker node,
each a raylet of its own with its CPUs, as two machines would have. Losing the node is killing
its processes at once (SIGKILL), as a machine that loses power.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The lavanya the batches run (``--lavanya DIR``: another checkout, for a baseline in the same run).
LAVANYA = {"path": REPO}
SENTENCES = ["नमस्ते, आप कैसे हैं?", "आज मौसम बहुत अच्छा है।", "हम कल सुबह बाज़ार जाएँगे।",
             "यह किताब मेरे भाई ने लिखी है।", "बच्चे मैदान में खेल रहे हैं।"]


def write_jobs(path: Path, jobs: int, sentences_per_job: int) -> None:
    """``jobs`` JSONL jobs of a few sentences each, outputs ``k001.wav``, ..."""
    lines = []
    for number in range(1, jobs + 1):
        text = " ".join(SENTENCES[(number + k) % len(SENTENCES)] for k in range(sentences_per_job))
        lines.append(json.dumps({"text": text, "output": f"k{number:03d}.wav", "lang": "hindi", "gender": "male"},
                                ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def two_node_cluster(head_cpus: int = 1, worker_cpus: int = 1) -> Iterator[tuple[object, object]]:
    """A head and a worker node on this machine: ``(cluster, worker_node)``."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": head_cpus, "include_dashboard": False})
    try:
        worker = cluster.add_node(num_cpus=worker_cpus)
        cluster.wait_for_nodes()
        yield cluster, worker
    finally:
        cluster.shutdown()


def start_batch(jobs_file: Path, out: Path, models: Path, ray: str, *extra: str) -> subprocess.Popen:
    """``lavanya synth --jsonl ... --ray RAY --format json`` in a process of its own."""
    command = [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models", str(models), "--jsonl", str(jobs_file),
               "--output-dir", str(out), "--ray", ray, "--format", "json", *extra]
    # Run from the job file's folder: ``python -c`` puts the working directory first on sys.path.
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=jobs_file.parent, env={**os.environ, "PYTHONPATH": str(LAVANYA["path"])})


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)


def manifest_entries(out: Path) -> list[dict]:
    path = out / "lavanya-results.jsonl"
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries


def workers(out: Path) -> set[str]:
    """The workers (``host:pid``) that have recorded a result."""
    return {entry["worker"] for entry in manifest_entries(out) if entry.get("worker")}


def count(out: Path) -> dict:
    """WAVs on disk, WAVs the manifest records (present, same sha256), temporaries left."""
    import hashlib

    wavs = {path.name for path in out.glob("*.wav")}
    recorded = {entry["output"] for entry in manifest_entries(out)
                if not entry.get("error") and entry["output"] in wavs
                and hashlib.sha256((out / entry["output"]).read_bytes()).hexdigest() == entry["sha256"]}
    temporaries = sorted(path.name for path in out.iterdir() if path.name.endswith(".tmp"))
    return {"wavs": len(wavs), "recorded": len(recorded), "temporaries": temporaries}


def finish(process: subprocess.Popen, timeout: float = 300) -> dict:
    """The batch's exit code, its JSON summary (None when stdout is not exactly one JSON
    document) and its stderr lines that are not lavanya's."""
    stdout, stderr = process.communicate(timeout=timeout)
    try:
        summary = json.loads(stdout)
    except ValueError:
        summary = None
    foreign = [line for line in stderr.splitlines() if line.strip() and not line.startswith("lavanya: ")]
    return {"code": process.returncode, "summary": summary, "foreign_stderr": foreign, "stderr": stderr,
            "stdout_chars": len(stdout)}


def lose_a_node(models: Path, work: Path, jobs: int, sentences: int, after: int) -> dict:
    """Kill the worker node once ``after`` results are recorded; let the run finish on the head;
    then run again. Figures: what the first run recorded, what the rerun redid."""
    jobs_file, out = work / "lose.jsonl", work / "lose-out"
    write_jobs(jobs_file, jobs, sentences)
    with two_node_cluster() as (cluster, worker):
        started = time.perf_counter()
        process = start_batch(jobs_file, out, models, cluster.address)
        # Kill only once both actors have recorded work: an actor still starting on the lost node
        # is started again elsewhere by Ray (no worker of ours is lost), so the case would not happen.
        wait_for(lambda: (len(manifest_entries(out)) >= after and len(workers(out)) >= 2) or process.poll() is not None,
                 300, "first results from both nodes")
        recorded_at_kill, workers_at_kill = len(manifest_entries(out)), len(workers(out))
        cluster.remove_node(worker, allow_graceful=False)
        first = finish(process)
        first["seconds"] = round(time.perf_counter() - started, 1)
        first.update(count(out), recorded_at_kill=recorded_at_kill, workers_at_kill=workers_at_kill)
        rerun = finish(start_batch(jobs_file, out, models, cluster.address))
        rerun.update(count(out))
    return {"jobs": jobs, "first": first, "rerun": rerun}


def stop_by_signal(models: Path, work: Path, jobs: int, sentences: int, after: int,
                   signum: int = signal.SIGINT) -> dict:
    """Send ``signum`` to the driver of a ``--ray local`` run once ``after`` results are
    recorded; then run again."""
    jobs_file, out = work / "signal.jsonl", work / "signal-out"
    write_jobs(jobs_file, jobs, sentences)
    process = start_batch(jobs_file, out, models, "local")
    wait_for(lambda: len(manifest_entries(out)) >= after or process.poll() is not None, 300, "first results")
    process.send_signal(signum)
    first = finish(process)
    first.update(count(out))
    rerun = finish(start_batch(jobs_file, out, models, "local"))
    rerun.update(count(out))
    return {"jobs": jobs, "signal": signal.Signals(signum).name, "first": first, "rerun": rerun}


def tiny_voices(work: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from synthkit import build_voice_root

    return build_voice_root(work / "Fastspeech2_HS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, help="a model root with hindi/male (default: tiny voices built here)")
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--sentences", type=int, default=3, help="sentences per job")
    parser.add_argument("--after", type=int, default=5, help="results recorded before the fault")
    parser.add_argument("--lavanya", type=Path, default=REPO, help="the checkout whose lavanya runs the batches")
    args = parser.parse_args(argv)
    LAVANYA["path"] = args.lavanya.resolve()
    os.environ["PYTHONPATH"] = str(LAVANYA["path"])  # the cluster's workers import that lavanya too
    with tempfile.TemporaryDirectory(prefix="lavanya-ray-faults-") as scratch:
        work = Path(scratch)
        models = args.models or tiny_voices(work)
        figures = {"node_lost": lose_a_node(models, work, args.jobs, args.sentences, args.after),
                   "sigint": stop_by_signal(models, work, args.jobs, args.sentences, args.after)}
    for case in figures.values():
        for run in ("first", "rerun"):
            case[run].pop("stderr")
    print(json.dumps(figures, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
