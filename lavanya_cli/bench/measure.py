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
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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

# Phrases for sentences never spoken before (``unrepeated_sentences``): every subject takes the
# plural verb of every predicate, so any choice is a sentence; its length varies from about 5
# to 30 words, and so does the length of what the vocoder is given.
TIMES = ("आज सुबह", "कल शाम को", "पिछले हफ्ते", "दोपहर के खाने के बाद", "गर्मियों की छुट्टियों में",
         "त्योहार से एक दिन पहले", "बारिश रुकने के बाद", "देर रात तक", "रविवार की सुबह", "परीक्षा के दिनों में",
         "सर्दियों की एक ठंडी शाम को", "मेले के आख़िरी दिन")
SUBJECTS = ("बच्चे", "किसान", "यात्री", "दुकानदार", "गाँव के लोग", "मेरे दोस्त", "हमारे पड़ोसी", "स्कूल के शिक्षक",
            "रेलवे के अधिकारी", "मोहल्ले के बुज़ुर्ग", "शहर के मज़दूर", "दादाजी और चाचाजी")
PLACES = ("नदी के किनारे", "गाँव के मेले में", "शहर के पुराने बाज़ार में", "स्कूल के मैदान में", "रेलवे स्टेशन के बाहर",
          "घर की छत पर", "पीपल के पेड़ के नीचे", "बस अड्डे के पास", "खेतों के बीच", "मंदिर की सीढ़ियों पर")
PREDICATES = ("अपनी किताबें और खाने का डिब्बा बस्ते में रख रहे थे", "सब्ज़ियों के बढ़ते दामों पर बहस कर रहे थे",
              "पुरानी बातें याद करते रहे", "चाय पीते हुए अख़बार पढ़ रहे थे", "पेड़ों की छाँव में आराम कर रहे थे",
              "त्योहार की तैयारी में लगे हुए थे", "धीरे धीरे घर की ओर लौट आए", "बस का इंतज़ार करते करते थक गए",
              "नए पुल के बारे में बातें कर रहे थे", "गीत गाते हुए नाव चला रहे थे",
              "बादलों को देखकर बारिश का अंदाज़ा लगा रहे थे", "एक दूसरे को नई कहानियाँ सुना रहे थे",
              "भीड़ में अपने साथियों को ढूँढ रहे थे", "मिट्टी के दीये और रंगीन काग़ज़ ख़रीद रहे थे")
CONNECTIVES = ("और फिर", "लेकिन", "इसलिए", "जबकि")
REPEATED, UNREPEATED = "repeated", "unrepeated"

# The library each torch-free engine runs on (imported before the voice, to time it apart).
RUNTIME_MODULES = {ONNX: ("onnxruntime",), OPENVINO: ("onnxruntime", "openvino")}  # openvino: the vocoder only


@dataclass
class ProcessRun:
    """One fresh process from start to WAV: wall seconds and its own peak resident memory."""

    wall_seconds: float
    peak_rss_mb: float
    report: dict[str, Any]
    cpu_seconds: float | None = None  # user and system time of the process: the cores it kept busy


def default_text(sentences: int) -> str:
    if not 1 <= sentences <= len(DEFAULT_SENTENCES):
        raise LavanyaError(f"{option('sentences')} must be 1 to {len(DEFAULT_SENTENCES)} for the built-in text")
    return " ".join(DEFAULT_SENTENCES[:sentences])


def unrepeated_sentences(seed: int = 0) -> Iterator[str]:
    """Hindi sentences, none given twice, of lengths that vary (``TIMES`` ... ``CONNECTIVES``):
    the same sequence for the same ``seed``, so that every engine and process speaks the same ones."""
    rng = random.Random(seed)
    given = set(DEFAULT_SENTENCES)

    def clause(unlike: list[str]) -> list[str]:
        """A subject, perhaps a place, a predicate: none of them among ``unlike``."""
        def choose(phrases: tuple[str, ...]) -> str:
            return rng.choice([phrase for phrase in phrases if phrase not in unlike])

        return [choose(SUBJECTS), *([choose(PLACES)] if rng.random() < 0.4 else []), choose(PREDICATES)]

    while True:
        words = [*([rng.choice(TIMES)] if rng.random() < 0.5 else [])]
        words += clause(words)
        if rng.random() < 0.35:  # a second clause, of other people doing another thing
            second = clause(words)
            words += [words.pop() + ",", rng.choice(CONNECTIVES), *second]
        sentence = " ".join(words) + "।"
        if sentence not in given:
            given.add(sentence)
            yield sentence


def unrepeated_texts(sentences: int, seed: int = 0) -> Iterator[str]:
    """Texts of ``sentences`` sentences each from ``unrepeated_sentences``: no sentence twice."""
    if sentences < 1:
        raise LavanyaError(f"{option('sentences')} must be 1 or more")
    source = unrepeated_sentences(seed)
    while True:
        yield " ".join(next(source) for _ in range(sentences))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_in_process(language: str, gender: str, text: str | None, runs: int = 3, *, find: FindOptions = FindOptions(),
                     options: LoadOptions = LoadOptions(), unrepeated: int = 0) -> dict[str, Any]:
    """Load a voice here through ``engine``, then time the first synthesis and ``runs`` warm ones.

    Repeated (``text``): every call speaks ``text``, so a runtime that prepares itself again for
    each new input length (OpenVINO compiles again) pays that only in the first call. Unrepeated
    (``unrepeated`` N, ``text`` None): every call speaks N sentences never spoken before in this
    process (``unrepeated_texts``), each a new length, as a server's requests are; what a new
    length costs then shows in the warm figure too. The warm real-time factor is the warm calls'
    compute seconds over their audio seconds; the front-end's time (``plan``) is timed apart.
    Only the torch engine imports torch; the import figure is what the engine needs (torch and
    ESPnet's modules, or ONNX Runtime; for ``auto``, ONNX Runtime: OpenVINO's import, where auto
    chose it, is in the load figure) and ``Voice``."""
    if (text is None) == (unrepeated == 0):
        raise ValueError("give text, or unrepeated (sentences per call), not both")
    started = time.perf_counter()
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
    texts = unrepeated_texts(unrepeated) if unrepeated else None
    plans: list[Any] = []

    def next_plan() -> tuple[Any, float, int]:
        """The plan of the next call's text, the seconds it took, and the text's length."""
        spoken = next(texts) if texts is not None else text
        if texts is None and plans:  # repeated: the same plan again
            return plans[0], 0.0, len(spoken)
        planning = time.perf_counter()
        plans[:] = [voice.plan(spoken)]
        return plans[0], time.perf_counter() - planning, len(spoken)

    calls = []
    for _ in range(runs + 1):  # the first call, then the warm ones
        plan, plan_seconds, characters = next_plan()
        seconds, audio = _timed_render(voice, plan)
        calls.append({"seconds": round(seconds, 3), "audio_seconds": round(audio, 3),
                      "real_time_factor": round(seconds / audio, 4) if audio else None,
                      "frontend_seconds": round(plan_seconds, 3), "characters": characters,
                      "sentences": sum(1 for utterance in plan if utterance.text)})
    first, warm = calls[0], calls[1:]
    warm_seconds = sum(call["seconds"] for call in warm)
    warm_audio = sum(call["audio_seconds"] for call in warm)
    warm_factors = [call["real_time_factor"] for call in warm if call["real_time_factor"] is not None]
    return {
        "voice": voice.spec.name,
        "root": str(voice.spec.root),
        "engine": voice.engine,
        "engine_choice": _choice(voice),
        "notes": list(voice.notes),
        "mode": UNREPEATED if unrepeated else REPEATED,
        "sentences": first["sentences"],
        "audio_seconds": first["audio_seconds"],
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "first_call_seconds": first["seconds"],
        "first_call_real_time_factor": first["real_time_factor"],
        "warm_seconds": round(warm_seconds / len(warm), 3),
        "warm_audio_seconds": round(warm_audio, 3),
        "warm_real_time_factor": round(warm_seconds / warm_audio, 4) if warm_audio else None,
        "warm_real_time_factor_range": [min(warm_factors), max(warm_factors)] if warm_factors else None,
        "calls": calls,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def _choice(voice) -> dict[str, Any] | None:
    """Why ``auto`` came to the voice's engine (None where an engine was named): the reason and
    the figures it was measured on, now or the first time the voice loaded here."""
    choice = getattr(voice.backend, "choice", None)
    if choice is None:
        return None
    return {"engine": choice.engine, "reason": choice.reason, "measured_now": choice.measured,
            "figures": choice.figures}


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
    return ProcessRun(round(wall, 3), round(usage.ru_maxrss / 1024, 1), report,
                      round(usage.ru_utime + usage.ru_stime, 3))


def lavanya_command(spec: VoiceSpec, text_file: Path, output: Path, threads: int | None,
                    engine: str = AUTO) -> list[str]:
    """``lavanya synth`` of ``text_file`` into ``output`` through ``engine``, as a user runs it."""
    return _voice_command("synth", spec, threads, engine) + ["--input", str(text_file), "-o", str(output)]


def bench_command(spec: VoiceSpec, sentences: int, runs: int, threads: int | None, engine: str,
                  unrepeated: bool = False) -> list[str]:
    """``lavanya bench`` of ``sentences`` sentences per call (built-in ones, or with ``unrepeated``
    new ones every call) through ``engine``, in its own process."""
    return (_voice_command("bench", spec, threads, engine) + ["--sentences", str(sentences), "--runs", str(runs)]
            + (["--unrepeated"] if unrepeated else []))


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
