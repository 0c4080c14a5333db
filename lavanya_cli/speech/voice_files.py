"""A voice's files, checked before anything is loaded, and its optional settings: every engine,
and the exporter, read a voice through these.

Upstream feeds the vocoder ``feat_gen_denorm * 2.3262`` and writes ``audio * 32768`` as int16.
Those two numbers are the defaults; a voice whose vocoder was trained differently says so in an
optional ``lavanya.yaml`` beside its ``config.yaml`` (``mel_scale:``, ``pcm_scale:``).
"""

from __future__ import annotations

from typing import Any

import yaml

from ..errors import LavanyaError, one_line, option
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text
from ..limits import checked_number
from ..modeltree.config import STATS_ENTRIES, load_yaml, read_config, stats_file_entries
from ..modeltree.layout import VoiceSpec
from ..modeltree.lfs_pointer import require_content
from ..modeltree.weights import is_deployed_vocoder, require_speakable
from .vocoder import read_hifigan_config, vocoder_mismatches

DEFAULT_MEL_SCALE = 2.3262
DEFAULT_PCM_SCALE = 32768.0
SETTINGS_NAME = "lavanya.yaml"
# Each setting's range: far around upstream's values, so a typo cannot make deafening noise.
_SETTINGS_BOUNDS = {"mel_scale": (0.01, 100.0), "pcm_scale": (1.0, 1e6)}


def read_voice_settings(spec: VoiceSpec) -> dict[str, float]:
    """The optional ``lavanya.yaml`` beside a voice's config (vocoder scaling that differs from upstream's)."""
    path = spec.model_dir / SETTINGS_NAME
    if not path.exists():
        return {}
    try:
        settings = load_yaml(read_regular_text(path, RESOURCE_MAX_BYTES, SETTINGS_NAME)) or {}
    except OSError as exc:
        raise LavanyaError(f"{path}: cannot read it ({one_line(exc)})") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise LavanyaError(f"{path}: does not parse ({one_line(exc)})") from None
    unknown = set(settings) - set(_SETTINGS_BOUNDS) if isinstance(settings, dict) else {"(not a mapping)"}
    if unknown:
        raise LavanyaError(f"{path}: unknown settings {', '.join(sorted(map(str, unknown)))}; "
                           f"known: {', '.join(sorted(_SETTINGS_BOUNDS))}")
    return {key: checked_number(value, f"{path}: {key}", *_SETTINGS_BOUNDS[key]) for key, value in settings.items()}


def voice_scales(spec: VoiceSpec, mel_scale: float | None = None, pcm_scale: float | None = None) -> tuple[float, float]:
    """``(mel_scale, pcm_scale)``: those given (checked), else the voice's ``lavanya.yaml``, else
    upstream's."""
    settings = read_voice_settings(spec)
    mel = settings.get("mel_scale", DEFAULT_MEL_SCALE) if mel_scale is None else \
        checked_number(mel_scale, "mel_scale", *_SETTINGS_BOUNDS["mel_scale"])
    pcm = settings.get("pcm_scale", DEFAULT_PCM_SCALE) if pcm_scale is None else \
        checked_number(pcm_scale, "pcm_scale", *_SETTINGS_BOUNDS["pcm_scale"])
    return mel, pcm


def check_voice_files(spec: VoiceSpec) -> dict[str, Any]:
    """Every file the voice needs, checked up front so each problem is one line naming it."""
    spec.require_inside()
    config = read_config(spec.config_path)
    require_speakable(spec)
    for key in stats_file_entries(config):
        kind = STATS_ENTRIES[key]
        require_content(spec.stats_path(kind), f"{kind} statistics")
    vocoder = read_hifigan_config(spec.vocoder.config_path)
    if not is_deployed_vocoder(spec.vocoder):
        require_content(spec.vocoder.generator_path, "HiFi-GAN generator")
    if differences := vocoder_mismatches(config, vocoder):
        raise LavanyaError(f"{spec.vocoder.config_path}: does not fit {spec.name} ({'; '.join(differences)}); "
                           f"pick the other family with {option('vocoder')} aryan|dravidian")
    return config
