"""Stage 3: the trained voice into a model root, in the layout and formats of the real voices.

``hindi/male/model/`` gets ``config.yaml`` (bare ``stats_file`` names), ``model.pth`` (the
``ESPnetTTSModel`` state dict that Text2Speech loads), the three stats files, ``lavanya.yaml``
(this vocoder takes ESPnet's log-mel as it is: ``mel_scale: 1.0`` instead of upstream's 2.3262)
and ``DEMO``; ``vocoder/male/aryan/hifigan/`` gets ``config.json``, ``generator`` (upstream's
``{"generator": state_dict}`` with weight norm) and ``DEMO``. Every file is replaced atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from voice_config import acoustic_config, vocoder_config

BUILD_COMMAND = "python scripts/demo_voice/build.py"
MODEL_DEMO_TEXT = f"""\
Bundled demo voice (hindi/male): a small ESPnet FastSpeech2 trained on this project's own Hindi
sentences spoken by eSpeak NG, so that lavanya speaks on a fresh clone without the Git LFS
weights of the real voices. It sounds small and robotic by design. Built by `{BUILD_COMMAND}`
(scripts/demo_voice/); the weights here are small enough for plain git, and this file tells
`lavanya lfs-track` and `lavanya verify` so.
"""
VOCODER_DEMO_TEXT = f"""\
Bundled demo vocoder: a narrow HiFi-GAN V1 generator trained on the demo voice's eSpeak NG audio
with multi-resolution log-mel losses, stored as upstream stores its generators. Built by
`{BUILD_COMMAND}` (scripts/demo_voice/); small weights kept in plain git.
"""
# The demo vocoder learnt on ESPnet's log-mel frames as they are (see lavanya_cli.speech.voice).
SETTINGS = {"mel_scale": 1.0}


def _write_text(path: Path, text: str) -> None:
    from lavanya_cli.fileio import replace_file

    replace_file(path, lambda handle: handle.write(text.encode("utf-8")))


def install(work: Path, root: Path, seed: int) -> None:
    import torch

    from lavanya_cli.fileio import replace_file
    from lavanya_cli.modeltree.layout import CONFIG_NAME, DEMO_MARKER, STATS_NAMES, WEIGHTS_NAME
    from lavanya_cli.speech.vocoder import save_upstream_generator
    from lavanya_cli.speech.voice_files import SETTINGS_NAME

    model_dir = root / "hindi" / "male" / "model"
    vocoder_dir = root / "vocoder" / "male" / "aryan" / "hifigan"
    model_dir.mkdir(parents=True, exist_ok=True)
    vocoder_dir.mkdir(parents=True, exist_ok=True)

    config = yaml.safe_dump(acoustic_config(seed), allow_unicode=True, sort_keys=False)
    _write_text(model_dir / CONFIG_NAME, config)
    for name in STATS_NAMES.values():
        content = (work / "stats" / name).read_bytes()
        replace_file(model_dir / name, lambda handle, content=content: handle.write(content))
    state = torch.load(work / "acoustic" / "model.pth", map_location="cpu", weights_only=True)
    replace_file(model_dir / WEIGHTS_NAME, lambda handle: torch.save(state, handle))
    _write_text(model_dir / SETTINGS_NAME, yaml.safe_dump(SETTINGS))
    _write_text(model_dir / DEMO_MARKER, MODEL_DEMO_TEXT)

    _write_text(vocoder_dir / "config.json", json.dumps(vocoder_config(seed), indent=4) + "\n")
    generator = torch.load(work / "vocoder_gta" / "generator.pth", map_location="cpu", weights_only=True)
    save_upstream_generator(generator, vocoder_dir / "generator")
    _write_text(vocoder_dir / DEMO_MARKER, VOCODER_DEMO_TEXT)


def copy_frontend_resources(source: Path, target: Path) -> None:
    """The source root's hindi number table into a scratch tree (``--no-install``), so that the
    held-out sentences with digits are read there exactly as in the repository's tree."""
    from lavanya_cli.fileio import replace_file

    table = source / "numToText" / "hindi.csv"
    if table.is_file():
        (target / "numToText").mkdir(parents=True, exist_ok=True)
        content = table.read_bytes()
        replace_file(target / "numToText" / table.name, lambda handle: handle.write(content))
