"""The demo voice's settings: an ESPnet ``config.yaml`` shaped like the real hindi/male one, and
an upstream-style HiFi-GAN ``config.json``, both much smaller networks.

The token list is the real hindi/male voice's (copied here so that the build does not need the
upstream tree): the demo reads exactly what the project's front-end makes for real voices.
"""

from __future__ import annotations

from typing import Any

from lavanya_cli.modeltree.layout import STATS_NAMES

SAMPLE_RATE = 22050
HOP = 256

TOKENS = [
    "<blank>", "<unk>", "a", "A", "E", "k", "r", "I", ",", "n", "s", "h", "i", "q", "t", "m", "o",
    "l", "p", "u", "y", "d", "b", "w", "ऐ", "g", "$", ".", "j", "c", "ट", "थ", "श", "U", "B", "औ",
    "ख", "ड", "z", "ध", "D", "f", "C", "ष", "M", "ण", "ठ", "घ", "J", "ऑ", "क", "P", "R", "T", "K",
    "ढ", "G", "ञ", "H", "ङ", "Y", "ऍ", "र", "<sos/eos>",
]

_STFT = {"n_fft": 1024, "hop_length": HOP, "win_length": 1024, "fs": SAMPLE_RATE}


def acoustic_config(seed: int) -> dict[str, Any]:
    """``config.yaml`` for the demo FastSpeech2, with bare ``stats_file`` names as shipped."""
    return {
        "config": "scripts/demo_voice/voice_config.py",
        "output_dir": "build/demo_voice/acoustic",
        "ngpu": 0,
        "seed": seed,
        "token_list": TOKENS,
        "odim": None,
        "model_conf": {},
        "use_preprocessor": True,
        "token_type": "char",
        "bpemodel": None,
        "non_linguistic_symbols": None,
        "cleaner": None,
        "g2p": None,
        "feats_extract": "fbank",
        "feats_extract_conf": {**_STFT, "fmin": 0, "fmax": 8000, "n_mels": 80},
        "normalize": "global_mvn",
        "normalize_conf": {"stats_file": STATS_NAMES["feats"]},
        "tts": "fastspeech2",
        "tts_conf": {
            "adim": 128,
            "aheads": 2,
            "elayers": 2,
            "eunits": 512,
            "dlayers": 2,
            "dunits": 512,
            "positionwise_layer_type": "conv1d",
            "positionwise_conv_kernel_size": 3,
            "duration_predictor_layers": 2,
            "duration_predictor_chans": 128,
            "duration_predictor_kernel_size": 3,
            "postnet_layers": 3,
            "postnet_filts": 5,
            "postnet_chans": 128,
            "use_masking": True,
            "use_scaled_pos_enc": True,
            "encoder_normalize_before": True,
            "decoder_normalize_before": True,
            "reduction_factor": 1,
            "init_type": "xavier_uniform",
            "init_enc_alpha": 1.0,
            "init_dec_alpha": 1.0,
            "transformer_enc_dropout_rate": 0.1,
            "transformer_enc_positional_dropout_rate": 0.1,
            "transformer_enc_attn_dropout_rate": 0.1,
            "transformer_dec_dropout_rate": 0.1,
            "transformer_dec_positional_dropout_rate": 0.1,
            "transformer_dec_attn_dropout_rate": 0.1,
            "pitch_predictor_layers": 2,
            "pitch_predictor_chans": 128,
            "pitch_predictor_kernel_size": 5,
            "pitch_predictor_dropout": 0.5,
            "pitch_embed_kernel_size": 1,
            "pitch_embed_dropout": 0.0,
            "stop_gradient_from_pitch_predictor": True,
            "energy_predictor_layers": 2,
            "energy_predictor_chans": 128,
            "energy_predictor_kernel_size": 3,
            "energy_predictor_dropout": 0.5,
            "energy_embed_kernel_size": 1,
            "energy_embed_dropout": 0.0,
            "stop_gradient_from_energy_predictor": False,
        },
        "pitch_extract": "dio",
        "pitch_extract_conf": {"fs": SAMPLE_RATE, "n_fft": 1024, "hop_length": HOP, "f0max": 220,
                               "f0min": 40, "reduction_factor": 1},
        "pitch_normalize": "global_mvn",
        "pitch_normalize_conf": {"stats_file": STATS_NAMES["pitch"]},
        "energy_extract": "energy",
        "energy_extract_conf": {**_STFT, "reduction_factor": 1},
        "energy_normalize": "global_mvn",
        "energy_normalize_conf": {"stats_file": STATS_NAMES["energy"]},
        "required": ["output_dir", "token_list"],
        "version": "202511",
        "distributed": False,
    }


def vocoder_config(seed: int) -> dict[str, Any]:
    """``config.json`` in upstream's HiFi-GAN V1 format with a narrow generator: 128 channels
    (upstream has 512) and three upsampling stages instead of four, so the last stage, at the
    full sample rate, keeps 16 channels. Against the first build's 64 channels and four stages a
    training step takes about 1.5 times as long on one core, and the held-out content ratio went
    from 0.62 to 0.59."""
    return {
        "resblock": "1",
        "seed": seed,
        "upsample_rates": [8, 8, 4],
        "upsample_kernel_sizes": [16, 16, 8],
        "upsample_initial_channel": 128,
        "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "segment_size": 8192,
        "num_mels": 80,
        "num_freq": 513,
        "n_fft": 1024,
        "hop_size": HOP,
        "win_size": 1024,
        "sampling_rate": SAMPLE_RATE,
        "fmin": 0,
        "fmax": 8000,
        "fmax_for_loss": None,
    }
