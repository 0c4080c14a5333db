"""Engines side by side, each in fresh processes: ``lavanya synth --engine E`` (and the upstream
way) from process start to WAV for 1 and 5 built-in sentences with each child's peak RSS, and the
warm real-time factor over sentences never spoken before from a fresh ``lavanya bench --engine E
--unrepeated``; as the machine is, and with one core busy.

The runs are interleaved: every round runs each engine once for each figure, the engines in an
order that turns one place each round (A B C, B C A, C A B), so that a load that comes or goes
during the comparison falls on all of them alike. Every run is recorded in the order it ran, with
the 1-minute load average before and after it; each figure is the median of its rounds, with
the least and the most. A condition is called ``idle`` only if the load average stayed at or
below ``IDLE_LOAD_PER_CORE`` per core all through it (this benchmark's own runs count in it).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import LavanyaError, option
from ..limits import available_cpus
from ..modeltree.layout import VoiceSpec
from ..speech.options import AUTO, ONNX, OPENVINO, TORCH, torch_installed
from .measure import (DEFAULT_SENTENCES, RUNTIME_MODULES, UNREPEATED, ProcessRun, bench_command, default_text,
                      lavanya_command, run_process, upstream_copy)

UPSTREAM = "upstream"
# ``auto``: lavanya synth as a user runs it, the engine measured for the voice here (its first,
# uncounted run measures it where no choice is kept).
COMPARABLE = (UPSTREAM, TORCH, ONNX, OPENVINO, AUTO)
ALL = "all"
SENTENCE_COUNTS = (1, len(DEFAULT_SENTENCES))
# What a condition is called: ``idle`` and ``loaded`` with nothing added, ``busy`` with a core
# kept busy (``busy, loaded`` where the load beside that core was above the idle limit too).
IDLE, LOADED, BUSY = "idle", "loaded", "busy"
BUSY_LOADED = "busy, loaded"
# The most 1-minute load average per core at which a condition is still called idle.
IDLE_LOAD_PER_CORE = 0.5
# The kinds of run: one unmeasured start-to-WAV per engine first (it makes a missing ONNX
# export and reads the files into the page cache), then per round a warm child, then the texts.
PREPARE, WARM, START_TO_WAV = "prepare", "warm", "start_to_wav"
# Calls of the warm child after its first, each one new sentence (``bench --unrepeated``).
WARM_CALLS = 5
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


def load_now() -> float:
    """The 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def condition_label(spinner: bool, load_max: float, core_count: int) -> str:
    """What a condition is called, from the most 1-minute load average seen through it:
    ``idle`` only at or below ``IDLE_LOAD_PER_CORE`` per core, else ``loaded``; with the
    spinner, ``busy``, or ``busy, loaded`` where the load less the spinner's core was above it."""
    if spinner:
        return BUSY if max(load_max - 1.0, 0.0) <= IDLE_LOAD_PER_CORE * core_count else BUSY_LOADED
    return IDLE if load_max <= IDLE_LOAD_PER_CORE * core_count else LOADED


@dataclass(frozen=True)
class Task:
    """One run of the schedule: ``kind`` (``PREPARE``, ``WARM``, ``START_TO_WAV``) of ``engine``
    in ``round`` (0 for ``PREPARE``) speaking ``sentences`` built-in sentences (``WARM``: new
    ones, one per call)."""

    round: int
    kind: str
    engine: str
    sentences: int


def rotated(engines: list[str], turn: int) -> list[str]:
    """``engines`` started ``turn`` places on: A B C, then B C A, then C A B."""
    shift = turn % len(engines) if engines else 0
    return engines[shift:] + engines[:shift]


def schedule(engines: list[str], runs: int, prepare: bool = True) -> list[Task]:
    """The runs of one comparison in order. With ``prepare``, one unmeasured start to WAV of
    one sentence per engine. Then ``runs`` rounds; in each, for the warm child (not for the
    upstream way, which keeps nothing warm) and for each text, every engine once, in the order
    of ``rotated(engines, round - 1)``: adjacent runs of one figure are of different engines,
    and each engine takes each place in turn."""
    tasks = [Task(0, PREPARE, engine, SENTENCE_COUNTS[0]) for engine in engines] if prepare else []
    for number in range(1, runs + 1):
        order = rotated(engines, number - 1)
        tasks += [Task(number, WARM, engine, 1) for engine in order if engine != UPSTREAM]
        for count in SENTENCE_COUNTS:
            tasks += [Task(number, START_TO_WAV, engine, count) for engine in order]
    return tasks


def spread(values: list[float]) -> dict[str, Any] | None:
    """Median, least and most of ``values`` (and the quartiles from four values on); None for none."""
    if not values:
        return None
    result: dict[str, Any] = {"median": round(statistics.median(values), 4), "min": min(values),
                              "max": max(values), "n": len(values)}
    if len(values) >= 4:
        low, _, high = statistics.quantiles(values, n=4)
        result["quartiles"] = [round(low, 4), round(high, 4)]
    return result


def compare_engines(spec: VoiceSpec, engines: list[str], runs: int = 3, busy: bool = False,
                    threads: int | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
                    ) -> dict[str, Any]:
    """Each of ``engines`` (names from ``COMPARABLE``) measured in fresh processes, interleaved
    (``schedule``), as the machine is and, with ``busy``, beside a process spinning on one core:
    one row per engine and condition, every run in order under ``runs``. ``progress`` is told
    of each run as it ends. The report is a plain dict: callers may add keys to it."""
    core_count = available_cpus()  # what the load average is divided by
    load_before = os.getloadavg()
    records: list[dict[str, Any]] = []
    conditions: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lavanya-bench-") as scratch:
        texts = {}
        for count in SENTENCE_COUNTS:
            texts[count] = Path(scratch) / f"{count}-sentences.txt"
            texts[count].write_text(default_text(count), encoding="utf-8")
        for spinning in ([False, True] if busy else [False]):
            with BusyCore() if spinning else contextlib.nullcontext() as spinner:
                first = len(records)
                load_start = load_now()
                for task in schedule(engines, runs, prepare=not conditions):
                    records.append(_run(spec, task, texts, Path(scratch), threads, len(records) + 1, spinning))
                    if progress is not None:
                        progress(records[-1])
                seen = [load_start] + [record[key] for record in records[first:] for key in ("load_before", "load_after")]
                label = condition_label(spinning, max(seen), core_count)
                for record in records[first:]:
                    record["condition"] = label
                conditions.append({
                    "name": label, "spinner": spinning, "spinner_cpu": spinner.cpu if spinner is not None else None,
                    "runs": [first + 1, len(records)], "load_start": load_start, "load_end": seen[-1],
                    "load_max": max(seen), "load_max_per_core": round(max(seen) / core_count, 2),
                    "children_cores_used": _cores_used(records[first:]),
                })
    load_after = os.getloadavg()
    rows = [_row(engine, condition, [record for record in records if record["measured"]
                                     and record["engine"] == engine and record["spinner"] == condition["spinner"]])
            for condition in conditions for engine in engines]
    _add_ratios(rows, records)
    return {
        "voice": spec.name,
        "root": str(spec.root),
        "engines": engines,
        "conditions": conditions,
        "runs": runs,
        "warm": {"mode": UNREPEATED, "calls": WARM_CALLS, "sentences_per_call": 1},
        "interleaving": "each round runs every engine once per figure, their order turned one place a round",
        "threads": threads,
        "cores": core_count,
        "idle_load_per_core": IDLE_LOAD_PER_CORE,
        "busy_cpu": next((condition["spinner_cpu"] for condition in conditions if condition["spinner"]), None),
        "load_average": {"before": [round(value, 2) for value in load_before],
                         "after": [round(value, 2) for value in load_after]},
        "rows": rows,
        "order": records,
    }


def _run(spec: VoiceSpec, task: Task, texts: dict[int, Path], scratch: Path, threads: int | None,
         index: int, spinner: bool) -> dict[str, Any]:
    """One task in a fresh process, and its record: what ran, its figures, the load around it
    (``condition`` is named when its condition ends)."""
    load_before = load_now()
    if task.kind == WARM:
        run = run_process(bench_command(spec, task.sentences, WARM_CALLS, threads, task.engine, unrepeated=True),
                          f"lavanya bench --engine {task.engine} --unrepeated")
    else:
        run = start_to_wav(spec, task.engine, texts[task.sentences], scratch, threads)
    record: dict[str, Any] = {
        "index": index, "condition": None, "spinner": spinner, "round": task.round, "kind": task.kind,
        "engine": task.engine, "sentences": task.sentences, "measured": task.kind != PREPARE,
        "seconds": run.wall_seconds, "peak_rss_mb": run.peak_rss_mb,
        "cpu_seconds": run.cpu_seconds, "audio_seconds": run.report.get("audio_seconds"),
        "load_before": load_before, "load_after": load_now(),
    }
    if task.kind == WARM:
        record.update({key: run.report.get(key) for key in (
            "mode", "warm_real_time_factor", "first_call_seconds", "first_call_real_time_factor", "notes")})
    return record


def _cores_used(records: list[dict[str, Any]]) -> float | None:
    """The cores this benchmark's own children kept busy on average while they ran: the part of
    the load average that is the benchmark itself."""
    timed = [record for record in records if record.get("cpu_seconds") is not None]
    wall = sum(record["seconds"] for record in timed)
    return round(sum(record["cpu_seconds"] for record in timed) / wall, 2) if wall else None


def _row(engine: str, condition: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """An engine's figures in one condition, from its measured runs there."""
    warm = [record for record in records if record["kind"] == WARM]
    row: dict[str, Any] = {
        "engine": engine, "condition": condition["name"], "spinner": condition["spinner"],
        "warm_real_time_factor": None, "warm": None, "notes": [],
    }
    if warm:
        factors = [record["warm_real_time_factor"] for record in warm if record["warm_real_time_factor"] is not None]
        firsts = [record["first_call_seconds"] for record in warm if record["first_call_seconds"] is not None]
        row["warm"] = {"mode": warm[0].get("mode"), "real_time_factor": spread(factors),
                       "first_call_seconds": spread(firsts), "peak_rss_mb": max(record["peak_rss_mb"] for record in warm)}
        row["warm_real_time_factor"] = row["warm"]["real_time_factor"]["median"] if factors else None
        row["notes"] = list(dict.fromkeys(note for record in warm for note in record.get("notes") or []))
    for count in SENTENCE_COUNTS:
        measured = [record for record in records if record["kind"] == START_TO_WAV and record["sentences"] == count]
        row[f"sentences_{count}"] = {
            "start_to_wav_seconds": spread([record["seconds"] for record in measured]),
            "peak_rss_mb": max(record["peak_rss_mb"] for record in measured),
            "audio_seconds": measured[0]["audio_seconds"],
            "runs": [record["index"] for record in measured],
        }
    row["peak_rss_mb"] = max(row[f"sentences_{count}"]["peak_rss_mb"] for count in SENTENCE_COUNTS)
    return row


def _add_ratios(rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """``vs_upstream`` on every other row: the upstream way's median (same condition) divided by
    the row's, so above 1 means faster or smaller than upstream, with the range of the ratios of
    the runs of one round (the two ran side by side); None where upstream did not run."""
    upstream = {row["spinner"]: row for row in rows if row["engine"] == UPSTREAM}
    by_index = {record["index"]: record for record in records}
    for row in rows:
        theirs = upstream.get(row["spinner"])
        if row["engine"] == UPSTREAM or theirs is None:
            row["vs_upstream"] = None
            continue
        ratios: dict[str, Any] = {}
        for count in SENTENCE_COUNTS:
            ours_figure, theirs_figure = row[f"sentences_{count}"], theirs[f"sentences_{count}"]
            ratios[f"start_to_wav_{count}"] = round(theirs_figure["start_to_wav_seconds"]["median"]
                                                    / ours_figure["start_to_wav_seconds"]["median"], 2)
            paired = [round(by_index[their_run]["seconds"] / by_index[our_run]["seconds"], 2)
                      for our_run, their_run in zip(ours_figure["runs"], theirs_figure["runs"])]
            ratios[f"start_to_wav_{count}_rounds"] = {"min": min(paired), "max": max(paired)}
        ratios["peak_rss"] = round(theirs["peak_rss_mb"] / row["peak_rss_mb"], 2)
        row["vs_upstream"] = ratios
