"""The demo voice's settings: an ESPnet ``config.yaml`` shaped like the real hindi/male one, and
an upstream-style HiFi-GAN ``config.json``, both much smaller networks.

Both come from the same builders as the test and benchmark voices (``lavanya_cli.testing.scaffold``)
with the demo's sizes; the token list is the real hindi/male voice's, so the demo reads exactly
what the project's front-end makes for real voices.
"""

from __future__ import annotations

from typing import Any

from lavanya_cli.modeltree.layout import STATS_NAMES
from lavanya_cli.testing.scaffold import HINDI_TOKENS, VoiceShape, fastspeech2_config, hifigan_config

SAMPLE_RATE = 22050
HOP = 256
TOKENS = list(HINDI_TOKENS)

# A FastSpeech2 with 2 + 2 layers of 128 dimensions; a HiFi-GAN V1 with 128 channels (upstream has
# 512) and three upsampling stages instead of four, so the last stage, at the full sample rate,
# keeps 16 channels. Against the first build's 64 channels and four stages a training step takes
# about 1.5 times as long on one core, and the held-out content ratio went from 0.62 to 0.59.
DEMO_SHAPE = VoiceShape(
    n_mels=80, fs=SAMPLE_RATE, hop=HOP, n_fft=1024, token_list=HINDI_TOKENS, fmax=8000, f0min=40, f0max=220,
    adim=128, aheads=2, elayers=2, eunits=512, dlayers=2, dunits=512, predictor_chans=128,
    postnet_layers=3, postnet_chans=128, upsample_rates=(8, 8, 4), upsample_initial_channel=128,
)


def acoustic_config(seed: int) -> dict[str, Any]:
    """``config.yaml`` for the demo FastSpeech2, with bare ``stats_file`` names as shipped."""
    return {
        **fastspeech2_config(DEMO_SHAPE, dict(STATS_NAMES)),
        "config": "scripts/demo_voice/voice_config.py",
        "output_dir": "build/demo_voice/acoustic",
        "ngpu": 0,
        "seed": seed,
        "g2p": None,
        "version": "202511",
        "distributed": False,
    }


def vocoder_config(seed: int) -> dict[str, Any]:
    """``config.json`` in upstream's HiFi-GAN V1 format for the demo's narrow generator."""
    return {**hifigan_config(DEMO_SHAPE), "seed": seed}
