"""``lavanya verify --deep``: read each voice's weights and compare them with its config.

Weights are read the way the converter reads them (``modeltree.checkpoint``: no torch, no
pickle code runs, whatever the file holds) and compared, key by key and shape by shape, with the
tensors the config's model holds: for a config the graph templates describe (every published
voice), the shapes ``templates.json`` lists, so no torch is needed; for any other config, the
state dict of the model ESPnet builds from it on torch's ``meta`` device where lavanya[torch]
is installed (no memory spent on parameters), assembled the way ESPnet's ``TTSTask`` does
(``tts.*``, ``feats_extract.*``, ``normalize.*`` ... prefixes of ``ESPnetTTSModel``) from the
component classes directly: importing ``espnet2.tasks.tts`` pulls in g2p front-ends that try
to download NLTK data. Without either, only the file's safety and form are checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FileError, LavanyaError
from ..modeltree.checkpoint import LegacyCheckpoint, open_checkpoint, tensor_dict
from ..modeltree.config import STATS_ENTRIES, read_config
from ..modeltree.layout import VocoderSpec, VoiceSpec
from ..modeltree.lfs_pointer import FileState, probe
from ..speech.convert import (NotConvertible, acoustic_fit, generator_state, shape_mismatch, upstream_names,
                              vocoder_template)
from ..speech.options import torch_installed
from ..speech.vocoder import espnet_to_upstream_state, hifigan_from_config, read_hifigan_config

RESTORE_RELEASED = "restore the voice's released weights"
RESTORE_UPSTREAM = "restore it from the upstream release"
# What a check found: (what is wrong, the fix), or None when the file is fine.
Finding = tuple[str, str] | None


def expected_shapes(config: dict[str, Any], config_path: Path) -> dict[str, tuple[int, ...]] | None:
    """Parameter and buffer shapes of the ESPnet TTS model ``config`` describes, by state-dict
    key: from the graph templates where the config fits them, else from ESPnet (torch); None
    when neither can say."""
    try:
        return acoustic_fit(config, config_path)[2]
    except NotConvertible:
        return espnet_shapes(config) if torch_installed() else None


def espnet_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]] | None:
    """The shapes ESPnet's model for ``config`` has, built on torch's meta device (None when the
    config names an acoustic model or feature extractor this check does not know; Fastspeech2_HS
    voices are all ``fastspeech2`` over ``fbank``)."""
    if config.get("tts") != "fastspeech2" or config.get("feats_extract") != "fbank":
        return None
    import torch

    from ..speech.acoustic import fastspeech2_from_config, output_dim
    from ..speech.espnet_import import import_espnet

    LogMelFbank = import_espnet("espnet2.tts.feats_extract.log_mel_fbank").LogMelFbank
    odim = output_dim(config)
    with torch.device("meta"):
        feats_extract = LogMelFbank(**(config.get("feats_extract_conf") or {}))
    tts = fastspeech2_from_config(config, "meta")
    shapes = {f"feats_extract.{k}": tuple(v.shape) for k, v in feats_extract.state_dict().items()}
    shapes.update({f"tts.{k}": tuple(v.shape) for k, v in tts.state_dict().items()})
    for key, kind in STATS_ENTRIES.items():
        prefix = key.removesuffix("_conf")
        if config.get(prefix) == "global_mvn":
            dim = odim if kind == "feats" else 1
            shapes.update({f"{prefix}.mean": (dim,), f"{prefix}.std": (dim,)})
    return shapes


def weights_problem(voice: VoiceSpec) -> Finding:
    """Why the voice's weights cannot serve it and the fix, or None. Only a regular file inside
    the root is read: pointers, missing files and everything else are left to the cheap
    checks, which already report them."""
    weights = voice.weights_path
    if probe(weights, voice.root).state is not FileState.PRESENT:
        return None
    try:
        expected = expected_shapes(read_config(voice.config_path), voice.config_path)
    except (LavanyaError, KeyError, TypeError, ValueError):
        expected = None  # the config's own problems are reported by the cheap checks
    root, failure = _read(weights, weights.name)
    if failure is not None:
        return failure
    state = _shapes(root)
    if state is None:
        return ("is not a state dict of tensors (a training checkpoint?); ESPnet loads model.state_dict() "
                "from this file", RESTORE_RELEASED)
    if expected is not None and (why := shape_mismatch(state, expected)):
        return (f"does not match the model config.yaml describes: {why}",
                "deploy the weights trained with this config (these belong to another voice or config)")
    return None


def generator_problem(vocoder: VocoderSpec, root: Path | None = None) -> Finding:
    """Why the HiFi-GAN generator cannot be loaded as one (upstream loads ``["generator"]``) and
    the fix, or None."""
    generator = vocoder.generator_path
    if probe(generator, root).state is not FileState.PRESENT:
        return None
    content, failure = _read(generator, "the HiFi-GAN generator")
    if failure is not None:
        return failure
    state = _shapes(content.get("generator")) if isinstance(content, dict) else None
    if state is None:
        return "is not a HiFi-GAN generator checkpoint (a dict with a 'generator' state dict)", RESTORE_UPSTREAM
    expected = expected_generator_shapes(vocoder.config_path)
    if expected is None:
        return None
    if why := shape_mismatch(upstream_names(state, expected), expected):
        return (f"does not match the HiFi-GAN that config.json describes: {why}",
                "deploy the generator trained with this config.json (this one belongs to another vocoder)")
    return None


def expected_generator_shapes(config_path: Path) -> dict[str, tuple[int, ...]] | None:
    """Shapes of the generator ``config.json`` describes, named as upstream saves them (weight
    norm's ``weight_g``/``weight_v``): from its graph template, else built on torch's meta
    device; None when the config cannot be read (the cheap checks report that) or neither can say."""
    try:
        config = read_hifigan_config(config_path)
    except LavanyaError:
        return None
    try:
        return generator_state(vocoder_template(config, config_path)[1])
    except NotConvertible:
        if not torch_installed():
            return None
    import torch

    with torch.device("meta"):
        generator = hifigan_from_config(config, weight_norm=True)
    return {key: tuple(value.shape) for key, value in espnet_to_upstream_state(generator.state_dict()).items()}


def _shapes(state: Any) -> dict[str, tuple[int, ...]] | None:
    """A state dict's tensor shapes by key (its tensors as the checkpoint reader describes them,
    or torch's for a file only torch reads), or None when it is not a non-empty dict of tensors."""
    records = tensor_dict(state)
    if records is not None:
        return {key: record.shape for key, record in records.items()}
    if (isinstance(state, dict) and state and all(type(key) is str for key in state)
            and all(type(value).__module__.startswith("torch") and hasattr(value, "shape") for value in state.values())):
        return {key: tuple(value.shape) for key, value in state.items()}
    return None


def _read(path: Path, what: str) -> tuple[Any, Finding]:
    """``(what the checkpoint holds, None)``, or ``(None, (why it could not be read safely, the
    fix))``. A file in torch's pre-1.6 format is read by torch (``weights_only``) where it is
    installed: the one format the reader leaves to torch."""
    try:
        with open_checkpoint(path, what) as checkpoint:
            return checkpoint.root, None
    except LegacyCheckpoint as exc:
        if not torch_installed():
            return None, (exc.reason, exc.fix)
        from ..speech.torch_weights import load_weights

        try:
            return load_weights(path, what), None
        except FileError as refused:
            return None, (refused.reason, refused.fix)
    except FileError as exc:
        return None, (exc.reason, exc.fix)
