"""Which engine speaks a voice, and the one interface every engine gives ``Voice``.

* ``onnx``: the voice's ONNX exports through ONNX Runtime, numpy around them; no torch. The
  everyday engine.
* ``openvino``: the vocoder's export through OpenVINO, in bfloat16 where the CPU has it; the
  acoustic model, a tenth of the work, stays on ONNX Runtime.
* ``torch``: ESPnet's modules on torch (``torch_engine``), the reference every export is checked
  against, and the only engine that runs on CUDA.
* ``auto`` (the default): on the CPU, decided for each voice by measuring both ONNX engines the
  first time it loads on a machine (``speech.engine_choice``); ``torch`` on CUDA.

docs/engines.md has the measurements behind these choices.

Where an ONNX engine finds no export made from the voice's current files (in its model root or
in the cache), the voice is exported into the cache once and spoken through it: through the
graph templates where it fits them (every published voice; no torch), else through torch where
it is installed; the notes say so. A voice outside the templates without torch is one line
naming the torch extra. At ``precision`` int8 the int8 acoustic export is made from the f32 one the same
way, once (``speech.quantize``: onnx and ONNX Runtime, no torch).

An engine gives ``mel(model_input, alpha)``: ESPnet's denormalised log-mel ``[frames, n_mels]``,
and ``audio(mel)``: float32 samples for a mel already times the voice's mel scale
(``audio_pieces``: the same samples as they are made).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import LavanyaError
from ..modeltree.layout import VoiceSpec
from .options import AUTO, ONNX, TEMPLATES, TORCH, LoadOptions


class Engine(Protocol):
    """What ``Voice`` speaks through; ``name`` is the engine (``onnx``, ``openvino``, ``torch``)."""

    name: str

    def mel(self, model_input: str, alpha: float) -> np.ndarray: ...

    def audio(self, mel: np.ndarray, first: int | None = None) -> np.ndarray:
        """The samples of ``audio_pieces``, joined."""
        ...

    def audio_pieces(self, mel: np.ndarray, first: int | None = None) -> Iterator[np.ndarray]:
        """The samples as they are made, the first piece ``first`` frames where the engine can."""
        ...


def resolve_engine(options: LoadOptions) -> str:
    """The engine ``options.engine`` comes to where no voice is known yet: itself, or for
    ``auto`` ``torch`` on a CUDA device and ``onnx`` on the CPU. Where a voice is loaded, ``auto``
    on the CPU is the engine measured for it (``load_engine``, ``speech.engine_choice``)."""
    if options.engine != AUTO:
        return options.engine
    return ONNX if options.device == "cpu" else TORCH


def load_engine(spec: VoiceSpec, config: dict[str, Any], options: LoadOptions) -> tuple[Engine, list[str]]:
    """The engine that speaks ``spec``, and notes for the user (an export made on the way; the
    engine ``auto`` chose, where it measured them now). An ONNX engine's ``choice`` is ``auto``'s
    ``engine_choice.Choice`` (None where an engine was named)."""
    engine = resolve_engine(options)
    if engine == TORCH:
        from .torch_engine import TorchEngine

        return TorchEngine.load(spec, config, options.device, options.threads), []
    from .export_store import MissingExport, find_exports
    from .onnx_engine import load_onnx_engine

    notes: list[str] = []
    try:
        exports = find_exports(spec, options.cache, options.precision)
    except MissingExport:
        notes = _make_missing_exports(spec, options)
        exports = find_exports(spec, options.cache, options.precision)
    choice = None
    if options.engine == AUTO:
        from .engine_choice import choose_engine

        choice = choose_engine(spec, options, exports)  # measured on the voice's exports, the first time
        engine = choice.engine
        if choice.measured:
            notes.append(choice.note)
    loaded = load_onnx_engine(spec, config, engine=engine, threads=options.threads, cache=options.cache,
                              acoustic_precision=options.precision, exports=exports)
    loaded.choice = choice
    return loaded, [*notes, *loaded.notes]


def prepare_exports(spec: VoiceSpec, options: LoadOptions) -> list[str]:
    """What ``load_engine`` would do about a missing export, without loading anything: for an
    ONNX engine, the voice's exports made into the cache once where there are none (a batch
    does it before its workers start, so they never import torch); the notes for the user."""
    return [] if resolve_engine(options) == TORCH else _make_missing_exports(spec, options)


def _make_missing_exports(spec: VoiceSpec, options: LoadOptions) -> list[str]:
    """``prepare_exports`` for an engine already known to be an ONNX one."""
    from .export_store import MissingExport, MissingInt8Export, find_exports

    notes: list[str] = []
    for _ in range(2):  # the f32 exports where missing, then (at int8) their int8 acoustic export
        try:
            find_exports(spec, options.cache, options.precision)
            break
        except MissingInt8Export as missing:
            from .quantize import make_missing_int8

            notes.append(make_missing_int8(spec, missing, options.cache, options.threads))
        except MissingExport as missing:
            notes += _export_once(spec, missing, options.cache)
    return notes


def _export_once(spec: VoiceSpec, missing: LavanyaError, cache: Path | None) -> list[str]:
    """The voice exported into the cache: through the graph templates where it fits them (no
    torch), else through torch where it is installed, else one line naming the torch extra;
    the note that says how it was made."""
    from .export import ensure_exports
    from .export_store import cache_root

    started = time.perf_counter()
    try:
        outcome = ensure_exports(spec, cache)
    except LavanyaError as exc:
        raise LavanyaError(f"{missing.message}, and it cannot be made here: {exc.message}", exc.exit_code) from None
    words = {TEMPLATES: "through the graph templates, without torch", TORCH: "through torch, checked against it"}
    ways = set(outcome.converters.values())
    how = (words[ways.pop()] if len(ways) == 1
           else ", ".join(f"the {kind} {words[way]}" for kind, way in outcome.converters.items()))
    return [f"exported {spec.name} to ONNX in {time.perf_counter() - started:.1f} s {how} "
            f"(cache: {cache_root(cache)}); later runs start from it"]
