"""Small voice trees in upstream's ``main`` layout, for tests and benchmarks.

The files are modelled on the real Fastspeech2_HS hindi voice (ESPnet's 4-space config style,
absolute ``stats_file`` paths from the authors' machine, npz stats with an int64 ``count``,
HiFi-GAN ``config.json``) with the dimensions shrunk so that a model built from the config is
tiny. Weights are either an LFS pointer or placeholder bytes: this module never imports torch;
callers that need real weights save a state dict over ``model.pth`` themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..modeltree.layout import (CONFIG_NAME, STATS_NAMES, VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME, WEIGHTS_NAME,
                         vocoder_family)

# token_list of the real hindi/male voice (main/hindi/male/model/config.yaml): the demo voice,
# the benchmark voice and the test voices read exactly what the front-end makes for real voices.
HINDI_TOKENS = (
    "<blank>", "<unk>", "a", "A", "E", "k", "r", "I", ",", "n", "s", "h", "i", "q", "t", "m", "o", "l",
    "p", "u", "y", "d", "b", "w", "ऐ", "g", "$", ".", "j", "c", "ट", "थ", "श", "U", "B", "औ", "ख", "ड",
    "z", "ध", "D", "f", "C", "ष", "M", "ण", "ठ", "घ", "J", "ऑ", "क", "P", "R", "T", "K", "ढ", "G", "ञ",
    "H", "ङ", "Y", "ऍ", "र", "<sos/eos>",
)
# Characters like the real hindi token list: romanised phones, punctuation, '$', '.', Devanagari.
DEFAULT_TOKENS = ("<blank>", "<unk>", "a", "A", "k", "r", "i", ",", "n", "s", "t", "m", "$", ".",
                  "ऐ", "ट", "श", "ख", "<sos/eos>")


@dataclass
class VoiceShape:
    """The numbers that make a scaffold voice: audio settings and (shrunk) model sizes."""

    n_mels: int = 8
    fs: int = 22050
    hop: int = 256
    n_fft: int = 1024
    token_list: tuple[str, ...] = DEFAULT_TOKENS
    adim: int = 16
    aheads: int = 2
    elayers: int = 1
    eunits: int = 32
    dlayers: int = 1
    dunits: int = 32
    predictor_chans: int = 16
    postnet_layers: int = 2
    postnet_chans: int = 16
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_initial_channel: int = 512
    fmax: int | None = None  # highest mel frequency; None: half the sample rate
    f0min: int = 80  # pitch extraction range (training only)
    f0max: int = 400
    extra_tts_conf: dict[str, Any] = field(default_factory=dict)

    @property
    def mel_fmax(self) -> int:
        return self.fmax if self.fmax is not None else self.fs // 2


def upstream_stats_path(language: str, gender: str, kind: str) -> str:
    """An absolute ``stats_file`` like the ones upstream's configs carry."""
    return f"/speech/arun/released_models/tts/{gender}/{language}/fastspeech2_hs/{STATS_NAMES[kind]}"


def fastspeech2_config(shape: VoiceShape, stats_files: dict[str, str]) -> dict[str, Any]:
    """An ESPnet FastSpeech2 config as upstream's ``config.yaml`` holds it (keys in its order)."""
    feats_conf = {"n_fft": shape.n_fft, "hop_length": shape.hop, "win_length": shape.n_fft,
                  "fs": shape.fs, "fmin": 0, "fmax": shape.mel_fmax, "n_mels": shape.n_mels}
    signal_conf = {"fs": shape.fs, "n_fft": shape.n_fft, "hop_length": shape.hop}
    return {
        "config": "conf/tuning/train_fastspeech2.yaml",
        "print_config": False,
        "log_level": "INFO",
        "output_dir": "exp/tts_train_fastspeech2_raw_char_None",
        "ngpu": 1,
        "seed": 0,
        "best_model_criterion": [["valid", "loss", "min"], ["train", "loss", "min"]],
        "optim": "adam",
        "optim_conf": {"lr": 1.0},
        "scheduler": "noamlr",
        "scheduler_conf": {"model_size": shape.adim, "warmup_steps": 4000},
        "token_list": list(shape.token_list),
        "odim": None,
        "model_conf": {},
        "use_preprocessor": True,
        "token_type": "char",
        "bpemodel": None,
        "non_linguistic_symbols": None,
        "cleaner": None,
        "g2p": "g2p_en_no_space",
        "feats_extract": "fbank",
        "feats_extract_conf": feats_conf,
        "normalize": "global_mvn",
        "normalize_conf": {"stats_file": stats_files["feats"]},
        "tts": "fastspeech2",
        "tts_conf": {
            "adim": shape.adim, "aheads": shape.aheads, "elayers": shape.elayers, "eunits": shape.eunits,
            "dlayers": shape.dlayers, "dunits": shape.dunits,
            "positionwise_layer_type": "conv1d", "positionwise_conv_kernel_size": 3,
            "duration_predictor_layers": 2, "duration_predictor_chans": shape.predictor_chans,
            "duration_predictor_kernel_size": 3,
            "postnet_layers": shape.postnet_layers, "postnet_filts": 5, "postnet_chans": shape.postnet_chans,
            "use_masking": True, "use_scaled_pos_enc": True,
            "encoder_normalize_before": True, "decoder_normalize_before": True,
            "reduction_factor": 1, "init_type": "xavier_uniform",
            "pitch_predictor_layers": 2, "pitch_predictor_chans": shape.predictor_chans,
            "pitch_predictor_kernel_size": 5, "pitch_predictor_dropout": 0.5,
            "pitch_embed_kernel_size": 1, "pitch_embed_dropout": 0.0,
            "stop_gradient_from_pitch_predictor": True,
            "energy_predictor_layers": 2, "energy_predictor_chans": shape.predictor_chans,
            "energy_predictor_kernel_size": 3, "energy_predictor_dropout": 0.5,
            "energy_embed_kernel_size": 1, "energy_embed_dropout": 0.0,
            "stop_gradient_from_energy_predictor": False,
            **shape.extra_tts_conf,
        },
        "pitch_extract": "dio",
        "pitch_extract_conf": {**signal_conf, "f0max": shape.f0max, "f0min": shape.f0min, "reduction_factor": 1},
        "pitch_normalize": "global_mvn",
        "pitch_normalize_conf": {"stats_file": stats_files["pitch"]},
        "energy_extract": "energy",
        "energy_extract_conf": {**signal_conf, "win_length": shape.n_fft, "reduction_factor": 1},
        "energy_normalize": "global_mvn",
        "energy_normalize_conf": {"stats_file": stats_files["energy"]},
        "required": ["output_dir", "token_list"],
        "version": "0.10.3a3",
        "distributed": True,
    }


class _EspnetStyleDumper(yaml.SafeDumper):
    """Dumps like ESPnet's training script: block style, non-ASCII as is."""


def config_text(config: dict[str, Any], *, style: str = "espnet") -> str:
    """``espnet``: key order kept, 4-space indent (upstream ``main``); ``sorted``: sorted keys,
    2-space indent (the yaml.dump rewrite in upstream ``New-Models``)."""
    if style not in ("espnet", "sorted"):
        raise ValueError(f"unknown config style {style!r}")
    espnet = style == "espnet"
    return yaml.dump(config, Dumper=_EspnetStyleDumper, allow_unicode=True, default_flow_style=False,
                     sort_keys=not espnet, indent=4 if espnet else 2, width=1000)


def write_config(path: Path, config: dict[str, Any], *, style: str = "espnet") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(config, style=style), encoding="utf-8")
    return path


def stats_arrays(dim: int, *, count: int = 12345, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible ESPnet stats: int64 scalar count, float32 sum and sum of squares of ``dim``."""
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 2.0, dim)
    var = rng.uniform(0.5, 2.0, dim)
    return {
        "count": np.array(count, dtype=np.int64),
        "sum": (mean * count).astype(np.float32),
        "sum_square": ((var + mean**2) * count).astype(np.float32),
    }


def write_stats(path: Path, dim: int, *, count: int = 12345, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, **stats_arrays(dim, count=count, seed=seed))
    return path


def lfs_pointer_text(content: bytes) -> str:
    """The Git LFS pointer file that stands for ``content``."""
    oid = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(content)}\n"


def write_lfs_pointer(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(lfs_pointer_text(content), encoding="ascii")
    return path


def hifigan_config(shape: VoiceShape) -> dict[str, Any]:
    """A HiFi-GAN ``config.json`` like upstream's, for this voice's mel settings."""
    return {
        "resblock": "1", "num_gpus": 0, "batch_size": 16, "learning_rate": 0.0002,
        "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.999, "seed": 1234,
        "upsample_rates": list(shape.upsample_rates),
        "upsample_kernel_sizes": [2 * rate for rate in shape.upsample_rates],
        "upsample_initial_channel": shape.upsample_initial_channel,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "segment_size": 8192, "num_mels": shape.n_mels, "num_freq": shape.n_fft // 2 + 1,
        "n_fft": shape.n_fft, "hop_size": shape.hop, "win_size": shape.n_fft,
        "sampling_rate": shape.fs, "fmin": 0, "fmax": shape.mel_fmax, "fmax_for_loss": None,
        "num_workers": 4,
        "dist_config": {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1},
    }


def write_vocoder(directory: Path, shape: VoiceShape, *, generator: bytes | None = b"placeholder generator\n") -> Path:
    """``config.json`` plus a placeholder ``generator`` (None: leave the generator out)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / VOCODER_CONFIG_NAME).write_text(json.dumps(hifigan_config(shape), indent=4) + "\n")
    if generator is not None:
        (directory / VOCODER_WEIGHTS_NAME).write_bytes(generator)
    return directory


def build_voice(root: Path, language: str = "hindi", gender: str = "male", *,
                shape: VoiceShape | None = None, weights: str = "placeholder",
                weights_content: bytes | None = None, config_style: str = "espnet",
                absolute_stats_paths: bool = True, vocoder: bool = True) -> Path:
    """Write one voice at ``root/<language>/<gender>/model`` and its vocoder; returns the model dir.

    ``weights``: ``placeholder`` (``weights_content`` or bytes derived from the voice name),
    ``pointer`` (an LFS pointer for that content) or ``none``. ``absolute_stats_paths`` writes
    upstream's absolute ``stats_file`` entries; False writes the bare names ``fix-config`` sets.
    """
    shape = shape or VoiceShape()
    model_dir = root / language / gender / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    stats_files = {kind: upstream_stats_path(language, gender, kind) if absolute_stats_paths else name
                   for kind, name in STATS_NAMES.items()}
    write_config(model_dir / CONFIG_NAME, fastspeech2_config(shape, stats_files), style=config_style)
    (model_dir / "feats_type").write_text("raw\n")
    for index, (kind, name) in enumerate(STATS_NAMES.items()):
        write_stats(model_dir / name, shape.n_mels if kind == "feats" else 1, seed=index)
    content = weights_content if weights_content is not None else f"weights of {language}/{gender}\n".encode()
    if weights == "placeholder":
        (model_dir / WEIGHTS_NAME).write_bytes(content)
    elif weights == "pointer":
        write_lfs_pointer(model_dir / WEIGHTS_NAME, content)
    elif weights != "none":
        raise ValueError(f"unknown weights kind {weights!r}")
    if vocoder:
        vocoder_dir = root / "vocoder" / gender / vocoder_family(language) / "hifigan"
        if not (vocoder_dir / VOCODER_CONFIG_NAME).exists():
            write_vocoder(vocoder_dir, shape)
    return model_dir


def build_root(root: Path, voices: tuple[tuple[str, str], ...] = (("hindi", "male"), ("tamil", "female")),
               **options: Any) -> Path:
    """A model root holding ``voices`` (language, gender pairs); options go to ``build_voice``."""
    for language, gender in voices:
        build_voice(root, language, gender, **options)
    return root
