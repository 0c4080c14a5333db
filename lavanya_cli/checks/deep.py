"""``lavanya verify --deep``: load each voice's weights and compare them with its config.

This is the one verification module that imports torch and ESPnet. Weights are loaded the way
synthesis loads them (``speech.torch_weights.load_weights``: ``torch.load(weights_only=True)``, no
pickle code runs, never torch's advice to load unsafely) and compared, key by key and shape by
shape, with the state dict of the model the config describes, built on torch's ``meta`` device
so no memory is spent on parameters. The model is assembled the way ESPnet's ``TTSTask`` does
(``tts.*``, ``feats_extract.*``, ``normalize.*`` ... prefixes of ``ESPnetTTSModel``) from the
component classes directly: importing ``espnet2.tasks.tts`` pulls in g2p front-ends that try
to download NLTK data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import FileError, LavanyaError, one_line
from ..modeltree.config import STATS_ENTRIES, read_config
from ..modeltree.lfs_pointer import FileState, probe
from ..modeltree.layout import VocoderSpec, VoiceSpec
from ..speech.vocoder import hifigan_from_config, read_hifigan_config, upstream_to_espnet_state

_EXAMPLES = 3
RESTORE_RELEASED = "restore the voice's released weights"
RESTORE_UPSTREAM = "restore it from the upstream release"
# What a check found: (what is wrong, the fix), or None when the file is fine.
Finding = tuple[str, str] | None


def expected_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]] | None:
    """Parameter and buffer shapes of the ESPnet TTS model ``config`` describes, by state-dict key.

    None when the config names an acoustic model or feature extractor this check does not know
    (Fastspeech2_HS voices are all ``fastspeech2`` over ``fbank``).
    """
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


def state_dict_mismatch(state: dict[str, Any], expected: dict[str, tuple[int, ...]]) -> str | None:
    """Why ``state`` cannot be loaded (strictly) into the model with ``expected`` shapes, or None."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {expected[k]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    parts = [f"{len(items)} {label} ({', '.join(items[:_EXAMPLES])}{', …' if len(items) > _EXAMPLES else ''})"
             for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shapes", wrong))
             if items]
    return "; ".join(parts) or None


def weights_problem(voice: VoiceSpec) -> Finding:
    """Why the voice's weights cannot serve it and the fix, or None. Only a regular file inside
    the root is loaded: pointers, missing files and everything else are left to the cheap
    checks, which already report them."""
    weights = voice.weights_path
    if probe(weights, voice.root).state is not FileState.PRESENT:
        return None
    try:
        expected = expected_shapes(read_config(voice.config_path))
    except (LavanyaError, KeyError, TypeError, ValueError):
        expected = None  # the config's own problems are reported by the cheap checks
    state, failure = _load(weights, weights.name)
    if failure is not None:
        return failure
    if not _is_tensor_dict(state):
        return ("is not a state dict of tensors (a training checkpoint?); ESPnet loads model.state_dict() "
                "from this file", RESTORE_RELEASED)
    if expected is not None and (why := state_dict_mismatch(state, expected)):
        return (f"does not match the model config.yaml describes: {why}",
                "deploy the weights trained with this config (these belong to another voice or config)")
    return None


def generator_problem(vocoder: VocoderSpec, root: Path | None = None) -> Finding:
    """Why the HiFi-GAN generator cannot be loaded as one (upstream loads ``["generator"]``) and
    the fix, or None."""
    generator = vocoder.generator_path
    if probe(generator, root).state is not FileState.PRESENT:
        return None
    state, failure = _load(generator, "the HiFi-GAN generator")
    if failure is not None:
        return failure
    if not (isinstance(state, dict) and _is_tensor_dict(state.get("generator"))):
        return "is not a HiFi-GAN generator checkpoint (a dict with a 'generator' state dict)", RESTORE_UPSTREAM
    expected = expected_generator_shapes(vocoder.config_path)
    if expected is None:
        return None
    try:
        why = state_dict_mismatch(upstream_to_espnet_state(state["generator"]), expected)
    except LavanyaError as exc:
        why = exc.message
    except RuntimeError as exc:  # weight norm cannot be folded: g and v disagree in shape
        why = one_line(exc, 200)
    if why:
        return (f"does not match the HiFi-GAN that config.json describes: {why}",
                "deploy the generator trained with this config.json (this one belongs to another vocoder)")
    return None


def expected_generator_shapes(config_path: Path) -> dict[str, tuple[int, ...]] | None:
    """Parameter shapes of the generator ``config.json`` describes (None when it cannot be read:
    the cheap checks report that), built on the meta device."""
    import torch

    try:
        config = read_hifigan_config(config_path)
    except LavanyaError:
        return None
    with torch.device("meta"):
        generator = hifigan_from_config(config, weight_norm=False)
    return {key: tuple(value.shape) for key, value in generator.state_dict().items()}


def _is_tensor_dict(value: Any) -> bool:
    import torch

    return isinstance(value, dict) and bool(value) and all(isinstance(v, torch.Tensor) for v in value.values())


def _load(path: Path, what: str) -> tuple[Any, Finding]:
    """``(the loaded object, None)``, or ``(None, (why it could not be loaded safely, the fix))``."""
    from ..speech.torch_weights import load_weights

    try:
        return load_weights(path, what), None
    except FileError as exc:
        return None, (exc.reason, exc.fix)
    except LavanyaError as exc:
        return None, (exc.message, RESTORE_RELEASED)
