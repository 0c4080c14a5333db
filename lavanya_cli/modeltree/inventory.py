"""A summary of one voice (its files' states, sample rate, vocoder and root), for ``lavanya
voices`` and anything that lists voices."""

from __future__ import annotations

from typing import Any

from ..errors import LavanyaError
from ..fileio import format_size
from .config import read_config, sample_rate
from .layout import EXPORT_MANIFEST_NAME, GENERATOR_GRAPH_NAME, VoiceSpec
from .lfs_pointer import FileState, probe
from .weights import is_deployed_vocoder, is_deployed_voice

# Where a voice's ONNX export lies, when it lies in the model tree (``lavanya export``): in a
# deploy root (graphs without weights), or beside the weights (a tree that ships both).
DEPLOYED = "deploy root"
BESIDE_WEIGHTS = "beside the weights"

# When a vocoder's two files differ in state, the one that stops it most is shown.
_WORST_FIRST = (FileState.OUTSIDE_ROOT, FileState.NOT_REGULAR, FileState.UNREADABLE, FileState.MISSING,
                FileState.LFS_POINTER, FileState.PRESENT)


def weights_summary(voice: VoiceSpec) -> str:
    """``present``, ``LFS pointer (148.7 MB)``, ``ONNX export`` (a deploy root), or the state's
    name (``missing``, ``not-regular``...)."""
    if export_place(voice) == DEPLOYED:
        return "ONNX export"
    found = probe(voice.weights_path, voice.root)
    if found.pointer is not None:
        return f"LFS pointer ({format_size(found.pointer.size)})"
    return found.state.value


def export_place(voice: VoiceSpec) -> str | None:
    """``DEPLOYED``, ``BESIDE_WEIGHTS`` or None (no export in the tree; the cache is not looked at)."""
    if is_deployed_voice(voice):
        return DEPLOYED
    return BESIDE_WEIGHTS if (voice.model_dir / EXPORT_MANIFEST_NAME).is_file() else None


def describe_voice(voice: VoiceSpec) -> dict[str, Any]:
    config_state = probe(voice.config_path, voice.root).state
    try:
        rate = sample_rate(read_config(voice.config_path)) if config_state is FileState.PRESENT else None
    except LavanyaError:
        rate = None
    generator = voice.vocoder.generator_path
    if is_deployed_vocoder(voice.vocoder):
        generator = voice.vocoder.directory / GENERATOR_GRAPH_NAME  # a deploy root's vocoder: the graph
    states = {probe(p, voice.root).state for p in (voice.vocoder.config_path, generator)}
    vocoder_state = next(state for state in _WORST_FIRST if state in states)
    weights = voice.weights_path
    return {
        "language": voice.language,
        "gender": voice.gender,
        "variant": voice.variant,
        "sample_rate": rate,
        "weights": weights_summary(voice),
        "weights_file": voice.relative(weights) if weights else None,
        "export": export_place(voice),
        "vocoder": voice.relative(voice.vocoder.directory),
        "vocoder_state": vocoder_state.value,
        "model_dir": voice.relative(voice.model_dir),
        "bundled": voice.bundled,
        "demo": voice.demo,
        "root": str(voice.root),
    }
