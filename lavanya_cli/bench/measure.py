"""Measuring a voice: load time, first-call latency, warm real-time factor and peak memory in
this process, and the commands and runner that ``bench.compare`` times in fresh processes.

Peak resident memory is ``ru_maxrss`` (kilobytes on Linux): of this process for the in-process
figures, and of each child (``os.wait4``) for the start-to-WAV runs. Linux carries a process's
peak across fork and exec, so the children are run while this process is still small.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EXIT_OK, LavanyaError, option
from ..modeltree.layout import STATS_NAMES, VoiceSpec
from ..speech.engines import resolve_engine
from ..speech.options import AUTO, ONNX, OPENVINO, TORCH, FindOptions, LoadOptions

# Five ordinary Hindi sentences of everyday length (docs/benchmark.md says how long they speak).
DEFAULT_SENTENCES = (
    "आज सुबह से आसमान में बादल छाए हुए थे और हल्की बारिश हो रही थी।",
    "बच्चे स्कूल जाने से पहले अपनी किताबें और खाने का डिब्बा बस्ते में रख रहे थे।",
    "बाज़ार में सब्ज़ियों के दाम पिछले हफ्ते की तुलना में थोड़े कम हो गए हैं।",
    "रेलवे स्टेशन पर यात्रियों की भीड़ देखकर अधिकारियों ने नई खिड़कियाँ खोल दीं।",
    "शाम को परिवार के सब लोग साथ बैठकर पुरानी बातें याद करते रहे।",
)

# The library each torch-free engine runs on (imported before the voice, to time it apart).
RUNTIME_MODULES = {ONNX: ("onnxruntime",), OPENVINO: ("onnxruntime", "openvino")}  # openvino: the vocoder only


@dataclass
class ProcessRun:
    """One fresh process from start to WAV: wall seconds and its own peak resident memory."""

    wall_seconds: float
    peak_rss_mb: float
    report: dict[str, Any]


def default_text(sentences: int) -> str:
    if not 1 <= sentences <= len(DEFAULT_SENTENCES):
        raise LavanyaError(f"{option('sentences')} must be 1 to {len(DEFAULT_SENTENCES)} for the built-in text")
    return " ".join(DEFAULT_SENTENCES[:sentences])


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_in_process(language: str, gender: str, text: str, runs: int = 3, *, find: FindOptions = FindOptions(),
                     options: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """Load a voice here through ``engine``, then time the first synthesis and ``runs`` warm ones
    of ``text``. Only the torch engine imports torch; the import figure is what the engine needs
    (torch and ESPnet's modules, or the ONNX runtime) and ``Voice``."""
    started = time.perf_counter()  # resolving auto may import a runtime already
    resolved = resolve_engine(options)
    if resolved == TORCH:
        from ..speech.acoustic import import_libraries

        import_libraries()
    else:
        for module in RUNTIME_MODULES[resolved]:
            if importlib.util.find_spec(module) is not None:  # else Voice.load says how to get it
                importlib.import_module(module)
    from ..speech.voice import Voice

    imported = time.perf_counter()
    voice = Voice.load(language, gender, find=find, options=options)
    loaded = time.perf_counter()
    plan = voice.plan(text)
    first, audio = _timed_render(voice, plan)
    warm = [_timed_render(voice, plan)[0] for _ in range(runs)]
    warm_seconds = sum(warm) / len(warm)
    return {
        "voice": voice.spec.name,
        "root": str(voice.spec.root),
        "engine": voice.engine,
        "notes": list(voice.notes),
        "sentences": sum(1 for utterance in plan if utterance.text),
        "audio_seconds": round(audio, 3),
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "first_call_seconds": round(first, 3),
        "warm_seconds": round(warm_seconds, 3),
        "warm_real_time_factor": round(warm_seconds / audio, 4) if audio else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _timed_render(voice, plan) -> tuple[float, float]:
    """Seconds spent speaking ``plan`` and seconds of audio it gave."""
    started = time.perf_counter()
    samples = sum(len(chunk.samples) for chunk in voice.render(plan))
    return time.perf_counter() - started, samples / voice.sample_rate


def run_process(command: list[str], what: str, cwd: Path | None = None) -> ProcessRun:
    """Run ``command`` (``what``, for an error line) to completion, with this process's
    environment; its wall time, its own peak RSS and its JSON report (stdout)."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)  # wait4, not wait: the child's own rusage
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    if process.returncode != EXIT_OK:
        tail = errors.strip().splitlines()[-1:] or ["no output"]
        raise LavanyaError(f"benchmark run failed ({what}): {tail[0]}")
    try:
        report = json.loads(output)
    except json.JSONDecodeError:
        report = {}
    return ProcessRun(round(wall, 3), round(usage.ru_maxrss / 1024, 1), report)


def lavanya_command(spec: VoiceSpec, text_file: Path, output: Path, threads: int | None,
                    engine: str = AUTO) -> list[str]:
    """``lavanya synth`` of ``text_file`` into ``output`` through ``engine``, as a user runs it."""
    return _voice_command("synth", spec, threads, engine) + ["--input", str(text_file), "-o", str(output)]


def bench_command(spec: VoiceSpec, sentences: int, runs: int, threads: int | None, engine: str) -> list[str]:
    """``lavanya bench`` of ``sentences`` built-in sentences through ``engine``, in its own process."""
    return _voice_command("bench", spec, threads, engine) + ["--sentences", str(sentences), "--runs", str(runs)]


def _voice_command(command: str, spec: VoiceSpec, threads: int | None, engine: str) -> list[str]:
    """``lavanya COMMAND`` for ``spec`` with this interpreter, reporting in JSON."""
    words = [sys.executable, "-c", "from lavanya_cli.cli import run; run()", command,
             "--models", str(spec.root), "--lang", spec.language, "--gender", spec.gender,
             "--engine", engine, "--format", "json"]
    if spec.variant:
        words += ["--variant", spec.variant]
    if threads:
        words += ["--threads", str(threads)]
    return words


def upstream_copy(spec: VoiceSpec, destination: Path) -> Path:
    """A throwaway model directory for the upstream-way runner, which rewrites its config.yaml:
    config and stats copied, the (read-only) weights linked."""
    destination.mkdir(parents=True)
    shutil.copy2(spec.config_path, destination / spec.config_path.name)
    for name in STATS_NAMES.values():
        if (spec.model_dir / name).is_file():
            shutil.copy2(spec.model_dir / name, destination / name)
    weights = spec.weights_path
    if weights is None:
        raise LavanyaError(f"{spec.model_dir}: no weights to benchmark")
    (destination / weights.name).symlink_to(weights.resolve())
    return destination
