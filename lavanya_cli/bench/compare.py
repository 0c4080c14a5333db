"""Engines side by side, each in fresh processes: ``lavanya synth --engine E`` (and the upstream
way) from process start to WAV for 1 and 5 built-in sentences with each child's peak RSS, and the
warm real-time factor from a fresh ``lavanya bench --engine E``; idle, and with one core busy.

Every figure comes from a child. The parent loads no voice: Linux carries a process's resident
memory into its children through fork and exec, so a grown parent would raise every child's peak.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import LavanyaError, option
from ..modeltree.layout import VoiceSpec
from ..speech.options import AUTO, ONNX, OPENVINO, TORCH, torch_installed
from .measure import (DEFAULT_SENTENCES, RUNTIME_MODULES, ProcessRun, bench_command, default_text,
                      lavanya_command, run_process, upstream_copy)

UPSTREAM = "upstream"
COMPARABLE = (UPSTREAM, TORCH, ONNX, OPENVINO)
ALL = "all"
SENTENCE_COUNTS = (1, len(DEFAULT_SENTENCES))
IDLE, BUSY = "idle", "busy"
# Time for the spinning process to start before anything is measured beside it.
BUSY_START_SECONDS = 0.3


def unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot run here (a library missing), or None."""
    if name in (UPSTREAM, TORCH) and not torch_installed():
        return "needs torch and ESPnet (python3 -m pip install 'lavanya[torch]')"
    for module in RUNTIME_MODULES.get(name, ()):
        if importlib.util.find_spec(module) is None:
            return f"needs {module} (python3 -m pip install {module})"
    return None


def choose_engines(value: str) -> tuple[list[str], dict[str, str]]:
    """The engines ``--compare VALUE`` names, and those ``all`` left out with the reason.

    ``all`` is every one that can run here; a named one that cannot is an error."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    if names == [ALL]:
        reasons = {name: unavailable_reason(name) for name in COMPARABLE}
        return [name for name, reason in reasons.items() if reason is None], {
            name: reason for name, reason in reasons.items() if reason is not None}
    if not names or any(name not in COMPARABLE for name in names):
        raise LavanyaError(f"{option('engines', flag='--compare')} {value!r}: give {ALL}, or some of {','.join(COMPARABLE)} separated by commas")
    chosen = list(dict.fromkeys(names))
    for name in chosen:
        reason = unavailable_reason(name)
        if reason is not None:
            raise LavanyaError(f"{option('engines', flag='--compare')} {name}: this install {reason}; or leave {name} out")
    return chosen, {}


# The busy process spins until its parent is gone, so a benchmark killed before it could stop
# it leaves no core at 100%.
SPIN = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent: pass"


class BusyCore:
    """Another process spinning on one core (the lowest this process may use) while the ``busy``
    condition is measured: the case of a small host that also serves something else."""

    def __init__(self) -> None:
        if not hasattr(os, "sched_setaffinity"):
            raise LavanyaError(f"{option('busy')} pins a process to one core, which needs Linux")
        self.cpu = min(os.sched_getaffinity(0))

    def __enter__(self) -> "BusyCore":
        self.process = subprocess.Popen([sys.executable, "-c", SPIN, str(os.getpid())])
        try:
            os.sched_setaffinity(self.process.pid, {self.cpu})
        except OSError:
            self._stop()
            raise
        time.sleep(BUSY_START_SECONDS)
        return self

    def __exit__(self, *exc_info: object) -> bool:
        self._stop()
        return False

    def _stop(self) -> None:
        self.process.kill()
        self.process.wait()


def start_to_wav(spec: VoiceSpec, engine: str, text_file: Path, scratch: Path, threads: int | None) -> ProcessRun:
    """One fresh process speaking ``text_file`` to a WAV: ``lavanya synth --engine ENGINE``, or
    for ``upstream`` the upstream way on a throwaway copy of the model directory."""
    run_dir = Path(tempfile.mkdtemp(dir=scratch))
    if engine != UPSTREAM:
        return run_process(lavanya_command(spec, text_file, run_dir / "speech.wav", threads, engine),
                           f"lavanya synth --engine {engine}")
    model_copy = upstream_copy(spec, run_dir / "model")
    command = [sys.executable, "-m", "lavanya_cli.bench.upstream_way", "--model-dir", str(model_copy),
               "--root", str(spec.root), "--language", spec.language, "--gender", spec.gender,
               "--vocoder-dir", str(spec.vocoder.directory), "--text-file", str(text_file),
               "--output", str(run_dir / "upstream.wav")]
    if threads:
        command += ["--threads", str(threads)]
    return run_process(command, "the upstream way", cwd=run_dir)


def compare_upstream(spec: VoiceSpec, text: str, threads: int | None = None, engine: str = AUTO) -> dict[str, Any]:
    """The same text start to WAV in fresh processes: ``lavanya synth`` and the upstream way."""
    with tempfile.TemporaryDirectory(prefix="lavanya-bench-") as scratch:
        text_file = Path(scratch) / "text.txt"
        text_file.write_text(text, encoding="utf-8")
        ours = start_to_wav(spec, engine, text_file, Path(scratch), threads)
        upstream = start_to_wav(spec, UPSTREAM, text_file, Path(scratch), threads)

    def describe(run: ProcessRun) -> dict[str, Any]:
        return {"start_to_wav_seconds": run.wall_seconds, "peak_rss_mb": run.peak_rss_mb,
                "audio_seconds": run.report.get("audio_seconds")}

    return {
        "lavanya": describe(ours),
        "upstream_way": {**describe(upstream), "chunks": upstream.report.get("chunks")},
        "ratios": {
            "start_to_wav": round(upstream.wall_seconds / ours.wall_seconds, 2),
            "peak_rss": round(upstream.peak_rss_mb / ours.peak_rss_mb, 2),
        },
    }


def compare_engines(spec: VoiceSpec, engines: list[str], runs: int = 3, busy: bool = False,
                    threads: int | None = None) -> dict[str, Any]:
    """Each of ``engines`` (names from ``COMPARABLE``) measured in fresh processes, idle and, with
    ``busy``, beside a process spinning on one core: one row per engine and condition."""
    conditions = [IDLE, BUSY] if busy else [IDLE]
    load_before = os.getloadavg()
    rows = []
    busy_cpu = None
    with tempfile.TemporaryDirectory(prefix="lavanya-bench-") as scratch:
        texts = {}
        for count in SENTENCE_COUNTS:
            texts[count] = Path(scratch) / f"{count}-sentences.txt"
            texts[count].write_text(default_text(count), encoding="utf-8")
        for condition in conditions:
            with BusyCore() if condition == BUSY else contextlib.nullcontext() as spinner:
                busy_cpu = spinner.cpu if spinner is not None else busy_cpu
                for engine in engines:
                    rows.append(_measure(spec, engine, condition, texts, Path(scratch), runs, threads))
    load_after = os.getloadavg()
    _add_ratios(rows)
    return {
        "voice": spec.name,
        "root": str(spec.root),
        "engines": engines,
        "conditions": conditions,
        "runs": runs,
        "threads": threads,
        "busy_cpu": busy_cpu,
        "load_average": {"before": [round(value, 2) for value in load_before],
                         "after": [round(value, 2) for value in load_after]},
        "rows": rows,
    }


def _measure(spec: VoiceSpec, engine: str, condition: str, texts: dict[int, Path], scratch: Path, runs: int,
             threads: int | None) -> dict[str, Any]:
    """One engine in one condition: the warm child first (it also makes a missing ONNX export,
    which no start-to-WAV run should pay for), then ``runs`` start-to-WAV runs per text."""
    row: dict[str, Any] = {"engine": engine, "condition": condition, "warm_real_time_factor": None, "notes": []}
    if engine != UPSTREAM:  # the upstream way rebuilds the model per sentence: it has no warm state
        warm = run_process(bench_command(spec, SENTENCE_COUNTS[-1], runs, threads, engine),
                           f"lavanya bench --engine {engine}").report
        row["warm_real_time_factor"] = warm.get("warm_real_time_factor")
        row["notes"] = warm.get("notes", [])
    for count, text_file in texts.items():
        measured = [start_to_wav(spec, engine, text_file, scratch, threads) for _ in range(runs)]
        row[f"sentences_{count}"] = {
            "start_to_wav_seconds": round(statistics.median(run.wall_seconds for run in measured), 3),
            "peak_rss_mb": max(run.peak_rss_mb for run in measured),
            "audio_seconds": measured[0].report.get("audio_seconds"),
            "runs_seconds": [run.wall_seconds for run in measured],
        }
    row["peak_rss_mb"] = max(row[f"sentences_{count}"]["peak_rss_mb"] for count in SENTENCE_COUNTS)
    return row


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """``vs_upstream`` on every other row: the upstream way's figure (same condition) divided by
    the row's, so above 1 means faster or smaller than upstream; None where upstream did not run."""
    upstream = {row["condition"]: row for row in rows if row["engine"] == UPSTREAM}
    for row in rows:
        theirs = upstream.get(row["condition"])
        if row["engine"] == UPSTREAM or theirs is None:
            row["vs_upstream"] = None
            continue
        row["vs_upstream"] = {
            **{f"start_to_wav_{count}": round(theirs[f"sentences_{count}"]["start_to_wav_seconds"]
                                              / row[f"sentences_{count}"]["start_to_wav_seconds"], 2)
               for count in SENTENCE_COUNTS},
            "peak_rss": round(theirs["peak_rss_mb"] / row["peak_rss_mb"], 2),
        }
