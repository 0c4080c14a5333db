"""A random-weight hindi/male voice with the real architecture, to benchmark without real weights.

The real hindi/male acoustic model (about 148 MB) and its 512-channel HiFi-GAN cost the same
compute and memory with random weights as with trained ones. Where ``../shared/iitm-fs2hs`` is
present its config, stats and vocoder config are used as they are; otherwise the same numbers,
written down here, go through ``lavanya_cli.testing.scaffold``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..testing.random_weights import write_random_acoustic_model, write_random_vocoder
from ..modeltree.layout import CONFIG_NAME, STATS_NAMES, VOCODER_CONFIG_NAME

MODEL_DIR = Path("hindi") / "male" / "model"
VOCODER_DIR = Path("vocoder") / "male" / "aryan" / "hifigan"
# A token's average duration: 6.5 frames of 11.6 ms (hop 256 at 22.05 kHz) is 13 tokens a
# second, the rate of ordinary Hindi speech (12 to 14 phones a second); long vowels, short
# ones, consonants and pauses differ about it.
FRAMES_PER_TOKEN = 6.5


def real_hindi_shape():
    """The real hindi/male sizes (adim 384, 4+4 layers of 1536 units, 5-layer pitch predictor,
    5-layer postnet, 80 mels at 22050 Hz, 512-channel HiFi-GAN V1)."""
    from ..testing.scaffold import HINDI_TOKENS, VoiceShape

    return VoiceShape(
        n_mels=80, fs=22050, hop=256, n_fft=1024, token_list=HINDI_TOKENS,
        adim=384, aheads=2, elayers=4, eunits=1536, dlayers=4, dunits=1536,
        predictor_chans=256, postnet_layers=5, postnet_chans=256,
        upsample_rates=(8, 8, 2, 2), upsample_initial_channel=512,
        extra_tts_conf={"pitch_predictor_layers": 5},
    )


# The Hindi front-end's files of the upstream tree, copied where it is present: a start then
# reads the 3.9 MB phone dictionary as a user's does.
LANGUAGE_RESOURCES = (Path("phone_dict") / "hindi", Path("phone_dict") / "english",
                      Path("numToText") / "hindi.csv",
                      Path("multilingualcharmap.json"))


def build_bench_voice(root: Path, shared: Path | None = None, frames_per_token: float = FRAMES_PER_TOKEN) -> Path:
    """Write the voice under ``root`` (a new model root); ``shared`` is ``iitm-fs2hs/main`` if present.

    Its tokens last as in speech (``random_weights.speech_like_weights``): ``frames_per_token``
    frames on average."""
    root = Path(root)
    model_dir = root / MODEL_DIR
    vocoder_dir = root / VOCODER_DIR
    if shared is not None and (shared / MODEL_DIR / CONFIG_NAME).is_file():
        model_dir.mkdir(parents=True)
        for name in (CONFIG_NAME, "feats_type", *STATS_NAMES.values()):
            if (shared / MODEL_DIR / name).is_file():
                shutil.copyfile(shared / MODEL_DIR / name, model_dir / name)
        vocoder_config = json.loads((shared / VOCODER_DIR / VOCODER_CONFIG_NAME).read_text())
        for resource in LANGUAGE_RESOURCES:  # the front-end a real tree gives: dictionary lookups, not the parser
            if (shared / resource).is_file():
                (root / resource).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shared / resource, root / resource)
    else:
        from ..testing.scaffold import build_voice, hifigan_config

        shape = real_hindi_shape()
        build_voice(root, "hindi", "male", shape=shape, weights="none", vocoder=False)
        vocoder_config = hifigan_config(shape)
    write_random_acoustic_model(model_dir, frames_per_token=frames_per_token, speech_like_durations=True)
    write_random_vocoder(vocoder_dir, vocoder_config)
    return root
