"""Which engine speaks a voice, and the one interface every engine gives ``Voice``.

* ``onnx``: the voice's ONNX exports through ONNX Runtime, numpy around them; no torch. The
  everyday engine: it starts in a fraction of torch's time and stays under 400 MB on a
  real-size voice.
* ``openvino``: the vocoder's export through OpenVINO, in bfloat16 where the CPU has it (about
  half the vocoder's time, at 130-230 MB more memory); the acoustic model, a tenth of the work,
  stays on ONNX Runtime.
* ``torch``: ESPnet's modules on torch, the reference every export is checked against, and the
  only engine that runs on CUDA.
* ``auto`` (the default): ``openvino`` where its extra is installed and the CPU computes
  bfloat16, else ``onnx``; ``torch`` for a CUDA device.

Where an ONNX engine finds no export made from the voice's current files (in its model root or
in the cache) and torch is installed, the voice is exported into the cache once, checked
against torch, and spoken through it; ``notes`` says so. Without torch that is an error naming
both ways out.

An engine gives ``mel(model_input, alpha)``: ESPnet's denormalised log-mel ``[frames, n_mels]``,
and ``audio(mel)``: float32 samples for a mel already times the voice's mel scale.
"""

from __future__ import annotations

import functools
import importlib.util
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import LavanyaError, one_line
from ..modeltree.layout import VoiceSpec

if TYPE_CHECKING:
    import torch

    from .acoustic import AcousticModel

AUTO, ONNX, OPENVINO, TORCH = "auto", "onnx", "openvino", "torch"
ENGINES = (AUTO, ONNX, OPENVINO, TORCH)
EXPORT_LIBRARIES = ("torch", "espnet2", "onnx")


class SpeechEngines(Protocol):
    """What ``Voice`` speaks through; ``name`` is one of ``ENGINES`` but ``auto``."""

    name: str

    def mel(self, model_input: str, alpha: float) -> np.ndarray: ...

    def audio(self, mel: np.ndarray) -> np.ndarray: ...


class TorchEngines:
    """The voice's FastSpeech2 (``AcousticModel``) and HiFi-GAN on torch."""

    name = TORCH

    def __init__(self, acoustic_model: "AcousticModel", vocoder_module: "torch.nn.Module"):
        self.acoustic_model = acoustic_model
        self.vocoder_module = vocoder_module

    @classmethod
    def load(cls, spec: VoiceSpec, config: dict[str, Any], device: str, threads: int | None) -> "TorchEngines":
        import torch

        from .espnet_import import quiet_libraries
        from .vocoder import load_hifigan

        if threads is not None:
            torch.set_num_threads(threads)
        with quiet_libraries():
            vocoder = load_hifigan(spec.vocoder.config_path, spec.vocoder.generator_path, device)
            acoustic = _load_acoustic_model(spec, config, device)
        return cls(acoustic, vocoder)

    def mel(self, model_input: str, alpha: float) -> np.ndarray:
        import torch

        from .espnet_import import quiet_libraries

        with torch.inference_mode(), quiet_libraries():
            return self.acoustic_model(model_input, alpha).float().cpu().numpy()

    def audio(self, mel: np.ndarray) -> np.ndarray:
        import torch

        from .espnet_import import quiet_libraries

        with torch.inference_mode(), quiet_libraries():
            frames = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)).T.unsqueeze(0)
            return self.vocoder_module(frames.to(self.acoustic_model.device)).reshape(-1).float().cpu().numpy()


def torch_installed() -> bool:
    """Whether the libraries an export needs are importable (checked without importing them)."""
    return all(importlib.util.find_spec(name) is not None for name in EXPORT_LIBRARIES)


def validate_engine(engine: str, device: str) -> None:
    """One line for an engine that is unknown or cannot run on ``device``; nothing imported."""
    if engine not in ENGINES:
        raise LavanyaError(f"--engine {engine!r}: use one of {', '.join(ENGINES)}")
    if engine not in (AUTO, TORCH) and device != "cpu":
        raise LavanyaError(f"--device {device} runs only the torch engine; add --engine torch, or use --device cpu")


def checked_engine(engine: str, device: str) -> str:
    """The engine ``engine`` comes to on ``device`` (``auto``: ``cpu_default_engine()``, ``torch``
    on CUDA)."""
    validate_engine(engine, device)
    if engine == AUTO:
        return cpu_default_engine() if device == "cpu" else TORCH
    return engine


@functools.cache
def cpu_default_engine() -> str:
    """What ``auto`` is on the CPU: ``openvino`` where the openvino extra is installed and the CPU
    computes bfloat16 natively (the vocoder in about half ONNX Runtime's time, within the quality
    guard, at 130-230 MB more memory); else ``onnx``, the light install's engine, under 400 MB."""
    if importlib.util.find_spec("openvino") is None or not _cpu_flags() & BF16_CPU_FLAGS:
        return ONNX  # nothing imported: OpenVINO's import alone takes 0.2-0.9 s
    from .onnx_engine import openvino_bf16_supported

    try:
        return OPENVINO if openvino_bf16_supported() else ONNX
    except Exception:  # an OpenVINO that is installed but cannot load (a missing shared library)
        return ONNX


# CPU features that give OpenVINO native bfloat16 (it confirms them itself before auto picks it).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (none where it cannot be read)."""
    from ..fileio import KIB, read_regular_text

    try:
        text = read_regular_text(Path("/proc/cpuinfo"), 4096 * KIB, "CPU information")
    except (OSError, LavanyaError):
        return set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return set(value.split())
    return set()


def load_engines(spec: VoiceSpec, config: dict[str, Any], *, engine: str = AUTO, device: str = "cpu",
                 threads: int | None = None, cache: Path | None = None) -> tuple[SpeechEngines, list[str]]:
    """The engines that speak ``spec``, and notes for the user (an export made on the way)."""
    engine = checked_engine(engine, device)
    if engine == TORCH:
        return TorchEngines.load(spec, config, device, threads), []
    from .export_store import MissingExport
    from .onnx_engine import ONNXRUNTIME, OPENVINO as OPENVINO_RUNTIME, load_engines as load_exported

    runtime = ONNXRUNTIME if engine == ONNX else OPENVINO_RUNTIME
    try:
        return load_exported(spec, config, runtime=runtime, threads=threads, cache=cache), []
    except MissingExport as missing:
        notes = _export_once(spec, missing, cache)
    return load_exported(spec, config, runtime=runtime, threads=threads, cache=cache), notes


def prepare_exports(spec: VoiceSpec, *, engine: str = AUTO, device: str = "cpu",
                    cache: Path | None = None) -> list[str]:
    """What ``load_engines`` would do about a missing export, without loading anything: for an
    ONNX engine, the voice's exports made into the cache once where there are none (a batch
    does it before its workers start, so they never import torch); the notes for the user."""
    if checked_engine(engine, device) == TORCH:
        return []
    from .export_store import MissingExport, find_exports

    try:
        find_exports(spec, cache)
    except MissingExport as missing:
        return _export_once(spec, missing, cache)
    return []


def _export_once(spec: VoiceSpec, missing: LavanyaError, cache: Path | None) -> list[str]:
    """The voice exported into the cache (checked against torch), or one line naming both ways
    out where torch is not installed; the note that says it was made."""
    if not torch_installed():
        raise LavanyaError(
            f"{missing.message}; this install has no torch to make one: run lavanya export where "
            "lavanya[torch] is installed (--out DIR writes a deploy root to copy here, then --models DIR), "
            "or install it here: python3 -m pip install 'lavanya[torch]'") from None
    from .export import ensure_exports
    from .export_store import cache_root

    started = time.perf_counter()
    try:
        ensure_exports(spec, cache)
    except LavanyaError as exc:
        raise LavanyaError(f"{exc.message} (--engine torch speaks without an export)", exc.exit_code) from None
    return [f"exported {spec.name} to ONNX in {time.perf_counter() - started:.1f} s, checked against torch "
            f"(cache: {cache or cache_root()}); later runs start from it"]


def _load_acoustic_model(spec: VoiceSpec, config: dict[str, Any], device: str) -> "AcousticModel":
    """The voice's FastSpeech2 and feature normaliser, weights loaded without pickle."""
    from .acoustic import AcousticModel
    from .runtime import load_weights
    from .voice import require_weights

    try:
        model = AcousticModel(config, spec.stats_path("feats"), device)
    except LavanyaError as exc:
        raise LavanyaError(f"{spec.config_path}: {exc.message}") from None
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise LavanyaError(f"{spec.config_path}: ESPnet cannot build this model ({one_line(exc)})") from None
    weights = require_weights(spec)
    state = load_weights(weights, "the acoustic model", map_location=device)
    if not isinstance(state, dict):
        raise LavanyaError(f"{weights}: expected a state_dict of tensors")
    try:
        result = model.load_state_dict(state)
    except RuntimeError as exc:
        raise LavanyaError(f"{weights}: does not fit {spec.config_path} ({one_line(exc)})") from None
    parameters = {name for name, _ in model.named_parameters()}
    missing = [key for key in result.missing_keys if key in parameters]
    if missing:
        raise LavanyaError(f"{weights}: lacks {len(missing)} parameters of the model in {spec.config_path} "
                           f"(first: {missing[0]})")
    return model
