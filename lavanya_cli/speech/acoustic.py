"""The acoustic half of a voice, text to log-mel, built without ESPnet's task layer.

ESPnet's ``Text2Speech`` goes through ``espnet2.tasks.tts``, whose import pulls in every
tokenizer, g2p front-end, feature extractor and model ESPnet has: a slow start and memory
spent before a voice is touched, on every start (docs/benchmark.md has the figures). At
inference a Fastspeech2_HS voice needs three ESPnet pieces: the char tokenizer and token-id
converter its preprocessor builds, ``FastSpeech2``, and the ``GlobalMVN`` that turns the
model's normalised frames back into log-mel. ``AcousticModel`` builds those from the config keys
``TTSTask.build_model`` and ``TTSTask.build_preprocess_fn`` read and computes what
``Text2Speech`` computes (``tests/test_acoustic.py`` compares the two).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LavanyaError
from ..limits import checked_frames

if TYPE_CHECKING:
    import torch

# What every Fastspeech2_HS config says; anything else would need ESPnet's task layer.
SUPPORTED = {
    "token_type": ("char",),
    "tts": ("fastspeech2",),
    "feats_extract": ("fbank",),
    "normalize": ("global_mvn", None),
    "cleaner": (None,),
}


# Every ESPnet module synthesis uses; none of them imports ESPnet's task layer.
ESPNET_MODULES = ("espnet2.text.char_tokenizer", "espnet2.text.token_id_converter", "espnet2.tts.fastspeech2",
                  "espnet2.layers.global_mvn", "espnet2.gan_tts.hifigan")


def import_libraries() -> None:
    """torch and ``ESPNET_MODULES`` imported now, so a benchmark can time imports apart."""
    from .espnet_import import import_espnet

    for module in ("torch", *ESPNET_MODULES):
        import_espnet(module)


def unsupported_setting(config: dict[str, Any]) -> str | None:
    """The first config setting ``AcousticModel`` cannot honour, as ``key: value``, or None."""
    for key, allowed in SUPPORTED.items():
        if config.get(key) not in allowed:
            return f"{key}: {config.get(key)}"
    return None


def output_dim(config: dict[str, Any]) -> int:
    """Mel bands the acoustic model predicts, as ``TTSTask`` derives them (fbank's ``n_mels``)."""
    if config.get("odim"):
        return int(config["odim"])
    return int((config.get("feats_extract_conf") or {}).get("n_mels", 80))


def fastspeech2_from_config(config: dict[str, Any], device: str = "cpu") -> "torch.nn.Module":
    """ESPnet's FastSpeech2 shaped as ``config`` describes, built on ``device`` (``meta``: shapes
    only, no memory). The import comes first so that no module-level tensor lands on ``meta``."""
    import torch

    from .espnet_import import import_espnet

    fastspeech2 = import_espnet("espnet2.tts.fastspeech2").FastSpeech2
    with torch.device(device):
        return fastspeech2(idim=len(config["token_list"]), odim=output_dim(config), **(config.get("tts_conf") or {}))


def _refuse_too_many_frames(_module, args) -> None:
    """Before the length regulator repeats each token's encoding by its predicted duration:
    refuse a sentence that would expand past ``SENTENCE_FRAMES_MAX`` frames (or whose durations
    overflowed), instead of letting torch try to allocate it (``alpha=1e9`` once asked for far
    more memory than any machine has; docs/safety.md)."""
    import torch

    _, durations, *rest = args
    alpha = rest[0] if rest else 1.0
    if alpha != 1.0:  # as ESPnet's LengthRegulator scales them
        durations = torch.round(durations.float() * alpha)
    checked_frames(durations.double().sum(dim=-1).max().item() if durations.min().item() >= 0 else -1.0)


class AcousticModel:
    """Token ids and denormalised log-mel frames for model-input text, as ``Text2Speech`` gives."""

    def __init__(self, config: dict[str, Any], feats_stats: Path, device: str = "cpu"):
        import torch

        from .espnet_import import import_espnet

        if setting := unsupported_setting(config):
            raise LavanyaError(f"this config has {setting}; lavanya speaks Fastspeech2_HS voices "
                               f"({', '.join(f'{k}: {v[0]}' for k, v in SUPPORTED.items())})")
        char_tokenizer = import_espnet("espnet2.text.char_tokenizer").CharTokenizer
        token_id_converter = import_espnet("espnet2.text.token_id_converter").TokenIDConverter
        self.tokenizer = char_tokenizer(non_linguistic_symbols=config.get("non_linguistic_symbols"))
        self.converter = token_id_converter(list(config["token_list"]))
        self.network = torch.nn.Module()
        self.network.tts = fastspeech2_from_config(config, device)
        self.network.normalize = None
        if config.get("normalize") == "global_mvn":
            options = {k: v for k, v in (config.get("normalize_conf") or {}).items() if k != "stats_file"}
            global_mvn = import_espnet("espnet2.layers.global_mvn").GlobalMVN
            self.network.normalize = global_mvn(stats_file=feats_stats, **options)
        self.network.to(device=device, dtype=torch.float32).eval()  # GlobalMVN starts on the CPU
        self.network.tts.length_regulator.register_forward_pre_hook(_refuse_too_many_frames)
        self.device = device

    def load_state_dict(self, state: dict[str, "torch.Tensor"]):
        """Load an ``ESPnetTTSModel`` state dict; keys of parts not needed here are ignored."""
        return self.network.load_state_dict(state, strict=False)

    def named_parameters(self):
        return self.network.named_parameters()

    def token_ids(self, text: str) -> np.ndarray:
        """What ESPnet's preprocessor makes of ``text``: one id per character, a space as
        ``<space>``, anything outside the token list as ``<unk>``."""
        return np.array(self.converter.tokens2ids(self.tokenizer.text2tokens(text)), dtype=np.int64)

    def __call__(self, text: str, alpha: float = 1.0) -> "torch.Tensor":
        """Log-mel frames ``[frames, mels]`` for model-input ``text``; call under inference mode."""
        import torch

        ids = torch.from_numpy(self.token_ids(text)).to(self.device)
        output = self.network.tts.inference(text=ids, use_teacher_forcing=False, alpha=alpha)
        frames = output["feat_gen"]
        if self.network.normalize is not None:
            frames = self.network.normalize.inverse(frames.clone()[None])[0][0]
        return frames
