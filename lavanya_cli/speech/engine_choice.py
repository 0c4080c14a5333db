"""What ``auto`` is for a voice on this machine: measured the first time, then kept in the cache.

Which ONNX engine is faster depends on the CPU, the runtimes' versions and the voice's vocoder,
not on a CPU flag: OpenVINO's bfloat16 vocoder was 2.3x ONNX Runtime's speed on one machine and
1.5x slower start to WAV on another (docs/engines.md). So where both can run, the first load of
a voice times them on the voice's own tokens, three sentences of realistic and different lengths
(each a new input length, as in real use), both vocoders loaded and run in turns (A B, B A, A B)
so that a change of load falls on both; each engine's figure is its load plus its three
sentences. The faster is taken, ONNX Runtime where OpenVINO is less than ``LEANER_MARGIN``
faster (it is the leaner: no second runtime in memory).

The choice is kept in the cache (``engine-choice/<key>.json``) under a key made of what decides
it: the CPU (model name and feature flags), the CPUs this process may use, the threads asked for,
the runtimes' and lavanya's versions, and the digests of the voice's graphs. Another CPU or a new
runtime gives another key, so the choice is made again; a voice that shares its vocoder and
acoustic graphs with another shares its choice. ``lavanya voices`` and ``lavanya bench`` show it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LavanyaError, __version__, one_line
from ..fileio import (KIB, MANIFEST_MAX_BYTES, cache_root, make_directories, read_json, read_regular_text, replace_file,
                      time_saving_writes)
from ..limits import available_cpus, rss_bytes
from ..modeltree.config import output_rate, read_config, token_list
from ..modeltree.layout import DECODER_GRAPH_NAME, ENCODER_GRAPH_NAME, GENERATOR_GRAPH_NAME, VoiceSpec
from .export_store import Export
from .options import ONNX, OPENVINO, LoadOptions

CHOICE_DIRECTORY = "engine-choice"
CHOICE_FORMAT = 1
# Tokens in each of the measured sentences: about 2 to 4 s of speech each on the real voices,
# everyday lengths, each different.
SENTENCE_TOKENS = (28, 42, 56)
# OpenVINO is taken only where it is at least this much faster than ONNX Runtime.
LEANER_MARGIN = 0.03
# The kept choices ``kept_choices`` reads at most.
KEPT_LISTED = 1000
# The runtimes whose versions decide the choice.
RUNTIMES = ("onnxruntime", "openvino")


@dataclass
class Choice:
    """What ``auto`` came to for a voice: the ``engine``, why (``reason``), the figures it was
    decided on (empty where there was nothing to choose from), and whether it was ``measured`` in
    this process."""

    engine: str
    reason: str
    figures: dict[str, Any] = field(default_factory=dict)
    measured: bool = False

    @property
    def note(self) -> str:
        return f"engine {self.engine}: {self.reason}"


def openvino_usable() -> bool:
    """Whether OpenVINO can run here (installed and its CPU plugin loads); nothing is imported
    where it is not installed."""
    if not openvino_installed():
        return False
    from .onnx_engine import openvino_bf16_supported

    try:
        openvino_bf16_supported()  # loads the CPU plugin
    except Exception:  # installed but unable to load (a missing shared library)
        return False
    return True


def openvino_installed() -> bool:
    return importlib.util.find_spec("openvino") is not None


def choose_engine(spec: VoiceSpec, options: LoadOptions, exports: tuple[Export, Export]) -> Choice:
    """``auto``'s engine for ``spec`` (its ``exports``, as ``find_exports`` gives them) on the
    CPU: the kept choice, else measured now and kept. OpenVINO is imported only to measure. Not
    measured (``onnx``): without OpenVINO, in a process that writes no time-saving caches (a
    server), where the choice could not be kept (an unwritable cache: it would be measured at
    every start)."""
    if not openvino_installed():
        return Choice(ONNX, "the only engine installed here (lavanya[openvino] adds the other)")
    key, inputs = choice_key(spec, options, exports)
    kept = stored_choice(options.cache, key)
    if kept is not None:
        return kept
    if not time_saving_writes():
        return Choice(ONNX, "no choice measured for this voice on this machine, and a server does not measure "
                            "(lavanya synth or lavanya bench with the voice here measures it once)")
    directory = _choice_path(options.cache, key).parent
    try:
        make_directories(directory)
        writable = os.access(directory, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        return Choice(ONNX, f"{directory} cannot be written, so a measured choice could not be kept; not measured")
    if not openvino_usable():
        return Choice(ONNX, "OpenVINO is installed but cannot load its CPU plugin here")
    try:
        choice = measure(spec, options, exports)
    except LavanyaError as exc:  # the voice speaks on onnx all the same: kept, not measured again
        choice = Choice(ONNX, f"measuring the engines failed ({one_line(exc, 200)})", measured=True)
    _store(options.cache, key, {"format": CHOICE_FORMAT, "engine": choice.engine, "reason": choice.reason,
                                "figures": choice.figures, "decided_by": inputs, "voice": spec.name,
                                "root": _root(spec)})
    return choice


def stored_choice(cache: Path | None, key: str) -> Choice | None:
    """The choice kept under ``key``, or None (none kept, or a kept file that is not one: it is
    measured again)."""
    kept = _read_choice(_choice_path(cache, key))
    return None if kept is None else _as_choice(kept)


def kept_choices(cache: Path | None = None) -> dict[tuple[str, str], Choice]:
    """The choices kept for this CPU and these runtimes, by model root (resolved) and voice
    name: what ``lavanya voices`` shows without hashing any voice's files (a voice changed since
    is measured again when it loads). The newest of at most ``KEPT_LISTED`` files are read."""
    directory = cache_root(cache) / CHOICE_DIRECTORY
    here = machine()
    try:
        entries = sorted(((entry.stat(follow_symlinks=False).st_mtime_ns, entry.path)
                          for entry in os.scandir(directory) if entry.name.endswith(".json")), reverse=True)
    except OSError:
        return {}
    found: dict[tuple[str, str], Choice] = {}
    for _, path in entries[:KEPT_LISTED]:
        kept = _read_choice(Path(path))
        decided_by = kept.get("decided_by") if kept else None
        if not isinstance(decided_by, dict) or any(decided_by.get(name) != value for name, value in here.items()):
            continue
        found.setdefault((str(kept.get("root")), str(kept.get("voice"))), _as_choice(kept))  # the newest
    return found


def voice_place(spec: VoiceSpec) -> tuple[str, str]:
    """How ``kept_choices`` names ``spec``."""
    return _root(spec), spec.name


def _root(spec: VoiceSpec) -> str:
    return os.path.realpath(spec.root)


def _read_choice(path: Path) -> dict[str, Any] | None:
    """A kept choice's record, or None where it is missing or not one."""
    try:
        kept = read_json(path, MANIFEST_MAX_BYTES, "an engine choice")
    except (OSError, LavanyaError):
        return None
    if not isinstance(kept, dict) or kept.get("format") != CHOICE_FORMAT or kept.get("engine") not in (ONNX, OPENVINO):
        return None
    return kept


def _as_choice(kept: dict[str, Any]) -> Choice:
    figures = kept.get("figures") if isinstance(kept.get("figures"), dict) else {}
    return Choice(kept["engine"], one_line(ValueError(kept.get("reason") or "measured earlier"), 400), figures)


def choice_key(spec: VoiceSpec, options: LoadOptions, exports: tuple[Export, Export]) -> tuple[str, dict[str, Any]]:
    """The key of ``spec``'s choice and what it is made of. Not ``--threads``: a server shares
    out its threads, and the choice made at the default threads is the one it should find."""
    acoustic, vocoder = exports
    graphs = {f"{kind}/{name}": (export.manifest.get("files") or {}).get(name, {}).get("sha256")
              for kind, export, names in (("acoustic", acoustic, (ENCODER_GRAPH_NAME, DECODER_GRAPH_NAME)),
                                          ("vocoder", vocoder, (GENERATOR_GRAPH_NAME,)))
              for name in names}
    inputs = {**machine(), "graphs": graphs}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return digest[:32], inputs


def machine() -> dict[str, Any]:
    """What a choice is kept for besides the voice: the CPU, the CPUs this process may use, the
    versions. ``choice_key`` keys on it, ``kept_choices`` matches it."""
    return {"cpu": cpu_signature(), "cpus": available_cpus(), "versions": runtime_versions()}


@functools.cache
def cpu_signature() -> dict[str, str]:
    """The CPU's model name and a digest of its feature flags, from /proc/cpuinfo (empty values
    where it cannot be read: the choice is then kept for "some CPU"); read once a process, not
    at every voice's load."""
    try:
        text = read_regular_text(Path("/proc/cpuinfo"), 4096 * KIB, "CPU information")
    except (OSError, LavanyaError):
        text = ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in ("model name", "flags") and name not in found:
            found[name] = value.strip()
    flags = " ".join(sorted(found.get("flags", "").split()))
    return {"model": found.get("model name", ""), "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16]}


@functools.cache
def runtime_versions() -> dict[str, str | None]:
    """lavanya's version and each runtime's, from the installed packages' metadata (no import);
    read once a process: the runtimes it has imported do not change under it."""
    versions: dict[str, str | None] = {"lavanya": __version__}
    for name in RUNTIMES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def measurement_sentences(tokens: list[str], seed: int = 0) -> list[str]:
    """Model inputs of ``SENTENCE_TOKENS`` tokens from the voice's own single-character tokens:
    words of 2 to 7 of them between spaces."""
    letters = sorted(token for token in tokens if len(token) == 1 and not token.isspace())
    if not letters:
        raise LavanyaError("the voice's token list has no single-character tokens to measure engines with")
    rng = random.Random(seed)
    sentences = []
    for length in SENTENCE_TOKENS:
        words, remaining = [], length
        while remaining > 0:
            size = min(rng.randint(2, 7), remaining)
            if remaining - size == 1:  # no room left for a space and a word: this word takes it
                size += 1
            words.append("".join(rng.choice(letters) for _ in range(size)))
            remaining -= size + 1
        sentences.append(" ".join(words))
    return sentences


def measure(spec: VoiceSpec, options: LoadOptions, exports: tuple[Export, Export]) -> Choice:
    """Both ONNX engines timed on ``spec`` here (see the module's docstring). Each vocoder is a
    private one, loaded as a later start loads it: OpenVINO's is compiled once into its cache
    first, untimed, so that its figure is the load from the cache that every later start pays."""
    from .onnx_engine import OnnxAcoustic, OnnxVocoder, compiled_model_cache, resolve_precision
    from .tokens import SPACE, Tokenizer

    config = read_config(spec.config_path)
    acoustic_export, vocoder_export = exports
    tokenizer = Tokenizer.from_config(config, token_list(config, spec.model_dir))
    acoustic = OnnxAcoustic.from_export(acoustic_export, config, spec.stats_path("feats"),
                                        space_id=tokenizer.ids_of.get(SPACE), threads=options.threads)
    mels = [acoustic.mel(tokenizer.ids(sentence)) for sentence in measurement_sentences(tokenizer.token_list)]
    del acoustic
    figures: dict[str, dict[str, Any]] = {}
    loaded: dict[str, OnnxVocoder] = {}
    started = time.perf_counter()
    for engine in (ONNX, OPENVINO):
        precision = resolve_precision(engine)
        compiled = compiled_model_cache(options.cache) if engine == OPENVINO else None

        def load() -> OnnxVocoder:
            return OnnxVocoder.from_export(vocoder_export, engine=engine, threads=options.threads,
                                           precision=precision, compiled_cache=compiled)

        if compiled is not None:
            load()  # compiled into the cache once, untimed: every later start loads it from there
        before, began = rss_bytes(), time.perf_counter()
        loaded[engine] = load()
        figures[engine] = {"precision": precision, "load_seconds": time.perf_counter() - began,
                           "resident_mb": max(0, rss_bytes() - before) / (1 << 20), "sentence_seconds": []}
    order = [ONNX, OPENVINO]
    for mel in mels:  # in turns, A B then B A: a change of load falls on both
        for engine in order:
            began = time.perf_counter()
            loaded[engine].audio(mel)
            figures[engine]["sentence_seconds"].append(time.perf_counter() - began)
        order.reverse()
    audio_seconds = sum(mel.shape[0] * loaded[ONNX].hop for mel in mels) / output_rate(config)
    for figure in figures.values():
        figure["seconds"] = figure["load_seconds"] + sum(figure["sentence_seconds"])
        figure["real_time_factor"] = sum(figure["sentence_seconds"]) / audio_seconds
        _round(figure)
    onnx, openvino = figures[ONNX]["seconds"], figures[OPENVINO]["seconds"]
    engine = decide(onnx, openvino)
    reason = (f"measured on this CPU: load and {len(mels)} new sentences ({audio_seconds:.1f} s of speech) took "
              f"{onnx:.2f} s on onnx, {openvino:.2f} s on openvino ({figures[OPENVINO]['precision']})")
    if engine == ONNX and openvino < onnx:
        reason += f"; openvino less than {LEANER_MARGIN:.0%} faster, onnx is the leaner"
    figures = {"engines": figures, "audio_seconds": round(audio_seconds, 3),
               "measuring_seconds": round(time.perf_counter() - started, 3)}
    return Choice(engine, reason, figures, measured=True)


def decide(onnx_seconds: float, openvino_seconds: float) -> str:
    """The faster engine; ONNX Runtime unless OpenVINO is ``LEANER_MARGIN`` faster."""
    return OPENVINO if openvino_seconds < onnx_seconds * (1 - LEANER_MARGIN) else ONNX


def _round(figure: dict[str, Any]) -> None:
    for name, value in figure.items():
        if isinstance(value, float):
            figure[name] = round(value, 4)
        elif isinstance(value, list):
            figure[name] = [round(item, 4) for item in value]


def _choice_path(cache: Path | None, key: str) -> Path:
    return cache_root(cache) / CHOICE_DIRECTORY / f"{key}.json"


def _store(cache: Path | None, key: str, record: dict[str, Any]) -> None:
    """Keep ``record`` (atomically); where the cache cannot be written the choice is made again
    next time, which costs time and nothing else."""
    path = _choice_path(cache, key)
    try:
        make_directories(path.parent)
        replace_file(path, lambda out: out.write(json.dumps(record, indent=1, sort_keys=True).encode() + b"\n"))
    except (OSError, LavanyaError):
        pass


__all__ = ["Choice", "choose_engine", "choice_key", "cpu_signature", "decide", "kept_choices", "measure", "openvino_usable",
           "runtime_versions", "stored_choice"]
