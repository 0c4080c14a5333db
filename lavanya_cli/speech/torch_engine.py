"""The torch engine: the voice's FastSpeech2 and HiFi-GAN as ESPnet's own modules on torch, the
reference every export is checked against and the only engine that runs on CUDA. Weights are
loaded as plain tensors only (``torch_weights``)."""

from __future__ import annotations

from collections.abc import Iterator

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import LavanyaError, import_optional, one_line
from ..modeltree.layout import VoiceSpec
from ..modeltree.weights import require_weights
from .options import TORCH

if TYPE_CHECKING:
    import torch

    from .acoustic import AcousticModel


class TorchEngine:
    """The voice's FastSpeech2 (``AcousticModel``) and HiFi-GAN on torch."""

    name = TORCH

    def __init__(self, acoustic_model: "AcousticModel", vocoder_module: "torch.nn.Module"):
        self.acoustic_model = acoustic_model
        self.vocoder_module = vocoder_module

    @classmethod
    def load(cls, spec: VoiceSpec, config: dict[str, Any], device: str = "cpu",
             threads: int | None = None) -> "TorchEngine":
        torch = import_optional("torch")
        import_optional("espnet2")  # the extra's other half: its absence is the same one line
        from .espnet_import import quiet_libraries
        from .vocoder import load_hifigan

        if threads is not None:
            torch.set_num_threads(threads)
        with quiet_libraries():
            vocoder = load_hifigan(spec.vocoder.config_path, spec.vocoder.generator_path, device)
            acoustic = _load_acoustic_model(spec, config, device)
        return cls(acoustic, vocoder)

    def mel(self, model_input: str, alpha: float) -> np.ndarray:
        import torch

        from .espnet_import import quiet_libraries

        with torch.inference_mode(), quiet_libraries():
            return self.acoustic_model(model_input, alpha).float().cpu().numpy()

    def audio(self, mel: np.ndarray, first: int | None = None) -> np.ndarray:
        """The sentence in one run (``first`` is for engines that vocode in pieces)."""
        import torch

        from .espnet_import import quiet_libraries

        with torch.inference_mode(), quiet_libraries():
            frames = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32)).T.unsqueeze(0)
            return self.vocoder_module(frames.to(self.acoustic_model.device)).reshape(-1).float().cpu().numpy()

    def audio_pieces(self, mel: np.ndarray, first: int | None = None) -> Iterator[np.ndarray]:
        """The whole sentence at once: torch vocodes it in one run."""
        yield self.audio(mel)


def _load_acoustic_model(spec: VoiceSpec, config: dict[str, Any], device: str) -> "AcousticModel":
    """The voice's FastSpeech2 and feature normaliser, weights loaded without pickle."""
    from .acoustic import AcousticModel
    from .torch_weights import load_weights

    try:
        model = AcousticModel(config, spec.stats_path("feats"), device)
    except LavanyaError as exc:
        raise LavanyaError(f"{spec.config_path}: {exc.message}") from None
    except (ValueError, KeyError, TypeError, RuntimeError, OSError) as exc:
        raise LavanyaError(f"{spec.config_path}: ESPnet cannot build this model ({one_line(exc)})") from None
    weights = require_weights(spec)
    state = load_weights(weights, "the acoustic model", map_location=device)
    if not isinstance(state, dict):
        raise LavanyaError(f"{weights}: expected a state_dict of tensors")
    try:
        result = model.load_state_dict(state)
    except RuntimeError as exc:
        raise LavanyaError(f"{weights}: does not fit {spec.config_path} ({one_line(exc)})") from None
    parameters = {name for name, _ in model.named_parameters()}
    missing = [key for key in result.missing_keys if key in parameters]
    if missing:
        raise LavanyaError(f"{weights}: lacks {len(missing)} parameters of the model in {spec.config_path} "
                           f"(first: {missing[0]})")
    return model
