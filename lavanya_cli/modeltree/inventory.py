"""A summary of every voice in a root, for ``lavanya voices`` and anything that lists voices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import read_config, sample_rate
from ..errors import LavanyaError
from .lfs_pointer import file_state
from .layout import ModelRoot, VoiceSpec


def weights_summary(voice: VoiceSpec) -> str:
    """``present``, ``LFS pointer (148.7 MB)`` or ``missing``."""
    state, pointer = file_state(voice.weights_path)
    if pointer is not None:
        return f"LFS pointer ({pointer.size / 1e6:.1f} MB)"
    return state


def describe_voice(voice: VoiceSpec) -> dict[str, Any]:
    try:
        rate = sample_rate(read_config(voice.config_path))
    except LavanyaError:
        rate = None
    vocoder_states = {file_state(p)[0] for p in (voice.vocoder.config_path, voice.vocoder.generator_path)}
    vocoder_state = "missing" if "missing" in vocoder_states else (
        "lfs-pointer" if "lfs-pointer" in vocoder_states else "present")
    weights = voice.weights_path
    return {
        "language": voice.language,
        "gender": voice.gender,
        "variant": voice.variant,
        "sample_rate": rate,
        "weights": weights_summary(voice),
        "weights_file": voice.relative(weights) if weights else None,
        "vocoder": voice.relative(voice.vocoder.directory),
        "vocoder_state": vocoder_state,
        "model_dir": voice.relative(voice.model_dir),
        "bundled": voice.bundled,
        "demo": voice.demo,
    }


def describe_voices(root: Path) -> list[dict[str, Any]]:
    return [describe_voice(voice) for voice in ModelRoot(root).voices()]
