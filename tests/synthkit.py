"""A tiny random-weight hindi/male voice in the real layout, built once per test session.

The config is the real hindi/male one's shape with shrunk dimensions (adim 32, one layer each);
the vocoder has the real upsampling (hop 256) with 32 channels. Building takes a few seconds,
so every synthesis test shares one tree (copy it before changing anything).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import yaml

FRAMES_PER_TOKEN = 4
HOP = 256
RATE = 22050
# token_list of the real hindi/male voice (../shared/iitm-fs2hs/main/hindi/male/model/config.yaml)
HINDI_TOKENS = [
    "<blank>", "<unk>", "a", "A", "E", "k", "r", "I", ",", "n", "s", "h", "i", "q", "t", "m", "o", "l",
    "p", "u", "y", "d", "b", "w", "ऐ", "g", "$", ".", "j", "c", "ट", "थ", "श", "U", "B", "औ", "ख", "ड",
    "z", "ध", "D", "f", "C", "ष", "M", "ण", "ठ", "घ", "J", "ऑ", "क", "P", "R", "T", "K", "ढ", "G", "ञ",
    "H", "ङ", "Y", "ऍ", "र", "<sos/eos>",
]
TINY_VOCODER = {
    "resblock": "1",
    "upsample_rates": [8, 8, 2, 2],
    "upsample_kernel_sizes": [16, 16, 4, 4],
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3, 7],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]],
    "num_mels": 80,
    "hop_size": HOP,
    "sampling_rate": RATE,
}


def tiny_config() -> dict:
    """The real hindi/male config's structure; stats paths absolute on another machine, as upstream's are."""
    away = "/speech/arun/released_models/tts/male/hindi/fastspeech2_hs"
    fbank = {"n_fft": 1024, "hop_length": HOP, "win_length": 1024, "fs": RATE, "fmin": 0, "fmax": 8000, "n_mels": 80}
    return {
        "token_list": HINDI_TOKENS,
        "odim": None,
        "model_conf": {},
        "use_preprocessor": True,
        "token_type": "char",
        "bpemodel": None,
        "non_linguistic_symbols": None,
        "cleaner": None,
        "g2p": "g2p_en_no_space",
        "feats_extract": "fbank",
        "feats_extract_conf": fbank,
        "normalize": "global_mvn",
        "normalize_conf": {"stats_file": f"{away}/feats_stats.npz"},
        "tts": "fastspeech2",
        "tts_conf": {
            "adim": 32, "aheads": 2, "elayers": 1, "eunits": 32, "dlayers": 1, "dunits": 32,
            "positionwise_layer_type": "conv1d", "positionwise_conv_kernel_size": 3,
            "duration_predictor_layers": 1, "duration_predictor_chans": 16, "duration_predictor_kernel_size": 3,
            "postnet_layers": 1, "postnet_filts": 5, "postnet_chans": 16,
            "use_masking": True, "use_scaled_pos_enc": True, "reduction_factor": 1,
            "pitch_predictor_layers": 1, "pitch_predictor_chans": 16, "pitch_predictor_kernel_size": 5,
            "pitch_embed_kernel_size": 1, "energy_predictor_layers": 1, "energy_predictor_chans": 16,
            "energy_predictor_kernel_size": 3, "energy_embed_kernel_size": 1,
        },
        "pitch_extract": "dio",
        "pitch_extract_conf": {"fs": RATE, "n_fft": 1024, "hop_length": HOP, "f0max": 220, "f0min": 40,
                               "reduction_factor": 1},
        "pitch_normalize": "global_mvn",
        "pitch_normalize_conf": {"stats_file": f"{away}/pitch_stats.npz"},
        "energy_extract": "energy",
        "energy_extract_conf": {"fs": RATE, "n_fft": 1024, "hop_length": HOP, "win_length": 1024,
                                "reduction_factor": 1},
        "energy_normalize": "global_mvn",
        "energy_normalize_conf": {"stats_file": f"{away}/energy_stats.npz"},
        "version": "0.10.3a3",
    }


def _write_stats(path: Path, dims: int, mean: float, std: float) -> None:
    count = 1000
    np.savez(path, count=np.array(count), sum=np.full(dims, mean * count),
             sum_square=np.full(dims, (std**2 + mean**2) * count))


def build_voice_root(root: Path) -> Path:
    """Write a hindi/male voice with random weights and the aryan vocoder under ``root``."""
    from lavanya_cli.random_weights import write_random_acoustic_model, write_random_vocoder

    model_dir = root / "hindi" / "male" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(tiny_config(), allow_unicode=True, sort_keys=False),
                                           encoding="utf-8")
    _write_stats(model_dir / "feats_stats.npz", 80, -4.0, 2.0)
    _write_stats(model_dir / "pitch_stats.npz", 1, 0.0, 1.0)
    _write_stats(model_dir / "energy_stats.npz", 1, 0.0, 1.0)
    write_random_acoustic_model(model_dir, frames_per_token=FRAMES_PER_TOKEN)
    write_random_vocoder(root / "vocoder" / "male" / "aryan" / "hifigan", TINY_VOCODER)
    return root


@functools.cache
def shared_voice_root() -> Path:
    """The session's one tiny voice tree (read-only by convention)."""
    scratch = Path(tempfile.mkdtemp(prefix="lavanya-tiny-voice-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return build_voice_root(scratch / "Fastspeech2_HS")


@functools.cache
def shared_voice():
    """One loaded Voice on the shared tree, for tests that only synthesize."""
    from lavanya_cli.voice import Voice

    return Voice.load("hindi", "male", models=shared_voice_root())
