"""What a voice in the tree has to speak with: real weights (not LFS pointers), or a deploy
root's ONNX export in their place. Facts about files, asked by synthesis, ``verify``, ``voices``,
``serve`` and ``add-voice`` alike."""

from __future__ import annotations

from pathlib import Path

from ..errors import LavanyaError
from .layout import EXPORT_MANIFEST_NAME, VocoderSpec, VoiceSpec
from .lfs_pointer import require_content


def is_deployed_voice(spec: VoiceSpec) -> bool:
    """A voice in a deploy root: its graphs and manifest beside ``config.yaml``, no weights."""
    return (spec.model_dir / EXPORT_MANIFEST_NAME).is_file() and spec.weights_path is None


def is_deployed_vocoder(vocoder: VocoderSpec) -> bool:
    """A deploy root's vocoder: its graph and manifest, no ``generator``."""
    return (vocoder.directory / EXPORT_MANIFEST_NAME).is_file() and not vocoder.generator_path.exists()


def require_weights(spec: VoiceSpec) -> Path:
    """The voice's weights file, or a one-line error when it is absent or only an LFS pointer."""
    weights = spec.weights_path
    if weights is None:
        raise LavanyaError(f"{spec.model_dir}: no model.pth (no weights for {spec.name})")
    require_content(weights, "the acoustic model")
    return weights


def require_speakable(spec: VoiceSpec) -> None:
    """A one-line error unless the voice has real weights, or is a deploy root's export (its
    graphs without ``model.pth``)."""
    if not is_deployed_voice(spec):
        require_weights(spec)
