"""Tiny random-weight voices in the real layout: lavanya_cli.testing.scaffold's trees with weights.

The scaffold's config is the real hindi voice's shape with shrunk dimensions; here it gets the
real hindi token list (so the front-end's output is all known tokens), random FastSpeech2
weights and a random 32-channel HiFi-GAN with the real upsampling (hop 256). Every synthesis
test shares one tree built once per session (copy it before changing anything).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from lavanya_cli.testing.scaffold import HINDI_TOKENS

FRAMES_PER_TOKEN = 4
HOP = 256
RATE = 22050


def build_voice_root(root: Path, voices: tuple[tuple[str, str], ...] = (("hindi", "male"),)) -> Path:
    """Scaffold ``voices`` under ``root`` (lavanya_cli.testing.scaffold) and give them random weights."""
    from lavanya_cli.testing.random_weights import write_random_acoustic_model, write_random_vocoder
    from lavanya_cli.testing.scaffold import VoiceShape, build_voice, hifigan_config

    shape = VoiceShape(token_list=HINDI_TOKENS, n_mels=20, hop=HOP, fs=RATE, upsample_initial_channel=32)
    for language, gender in voices:
        model_dir = build_voice(root, language, gender, shape=shape)
        write_random_acoustic_model(model_dir, frames_per_token=FRAMES_PER_TOKEN)
        write_random_vocoder(root / "vocoder" / gender / "aryan" / "hifigan", hifigan_config(shape))
    return root


@functools.cache
def shared_voice_root() -> Path:
    """The session's one tiny tree, hindi male and female (read-only by convention)."""
    scratch = Path(tempfile.mkdtemp(prefix="lavanya-tiny-voice-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return build_voice_root(scratch / "Fastspeech2_HS", (("hindi", "male"), ("hindi", "female")))


@functools.cache
def shared_voice(engine: str = "auto"):
    """One loaded Voice on the shared tree, for tests that only synthesize (``auto``: the ONNX
    engine, exported into the session's cache on first use; ``torch``: the reference)."""
    from lavanya_cli.speech.voice import Voice

    return Voice.load("hindi", "male", models=shared_voice_root(), engine=engine)
