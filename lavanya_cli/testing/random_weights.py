"""Random weights for a voice tree in the real layout: tests and the benchmark voice use them.

Random weights cost the same compute and memory as trained ones of the same shape. One thing is
fixed on purpose: the duration predictor's output layer is set so that every token lasts
``frames_per_token`` frames (a random predictor says zero, which would give no audio at all),
so sentence lengths, ``alpha`` and real-time factors behave as with a trained voice.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from ..fileio import replace_file
from ..modeltree.config import read_config, write_runtime_config
from ..modeltree.layout import CONFIG_NAME, VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME, WEIGHTS_NAME
from ..speech.vocoder import hifigan_from_config, save_upstream_generator


def write_random_acoustic_model(model_dir: Path, seed: int = 0, frames_per_token: int = 6) -> Path:
    """Build the FastSpeech2 that ``model_dir/config.yaml`` describes (its stats files must
    exist) and save random weights as ``model_dir/model.pth``."""
    import torch

    from ..speech.espnet_import import quiet_libraries, text2speech_class

    model_dir = Path(model_dir)
    config = read_config(model_dir / CONFIG_NAME)
    text2speech_class()  # imports ESPnet quietly
    from espnet2.tasks.tts import TTSTask

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="lavanya-") as scratch, quiet_libraries():
        runtime_config = write_runtime_config(config, model_dir, Path(scratch))
        model, _ = TTSTask.build_model_from_file(runtime_config, None, "cpu")
    durations = model.tts.duration_predictor.linear
    with torch.no_grad():
        durations.weight.zero_()
        durations.bias.fill_(math.log(frames_per_token + 1.0))  # the predictor's offset is 1
    target = model_dir / WEIGHTS_NAME
    replace_file(target, lambda handle: torch.save(model.state_dict(), handle))
    return target


def write_random_vocoder(directory: Path, config: dict[str, Any], seed: int = 0) -> Path:
    """``config.json`` and a random ``generator`` in upstream's format under ``directory``."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    generator = hifigan_from_config(config, weight_norm=True)
    text = json.dumps(config, indent=4) + "\n"
    replace_file(directory / VOCODER_CONFIG_NAME, lambda handle: handle.write(text.encode("utf-8")))
    save_upstream_generator(generator.state_dict(), directory / VOCODER_WEIGHTS_NAME)
    return directory / VOCODER_WEIGHTS_NAME
