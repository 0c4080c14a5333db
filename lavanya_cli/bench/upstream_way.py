"""Synthesis the way upstream's inference script does it, for ``lavanya bench --compare-upstream``.

Run as ``python -m lavanya_cli.bench.upstream_way`` in a fresh process on a throwaway copy of a model
directory. Like upstream it imports ESPnet in this process and, for every text chunk, rewrites
``config.yaml`` with stats paths, rebuilds ``Text2Speech`` and reloads the weights before
speaking the chunk; the vocoder is loaded once per process. What is not upstream's: the text
goes through lavanya's front-end (the same model input as ``lavanya synth``), the weights are
loaded with ``weights_only=True``, and samples are clipped before int16. Those cost the same
either way, so the difference measured is the per-chunk rebuild.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from ..errors import EXIT_OK
from ..modeltree.config import write_runtime_config
from ..modeltree.layout import VocoderSpec, VoiceSpec
from ..speech.voice_files import DEFAULT_MEL_SCALE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True, help="throwaway copy; config.yaml is rewritten")
    parser.add_argument("--root", type=Path, required=True, help="model root with phone_dict, numToText")
    parser.add_argument("--language", required=True)
    parser.add_argument("--gender", required=True)
    parser.add_argument("--vocoder-dir", type=Path, required=True)
    parser.add_argument("--text-file", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    import soundfile
    import torch

    from ..frontend import Frontend, Speech, segment_text
    from ..speech.vocoder import load_hifigan
    from ..speech.espnet_import import text2speech_class

    Text2Speech = text2speech_class()
    if args.threads:
        torch.set_num_threads(args.threads)
    imported = time.perf_counter()
    config_path = args.model_dir / "config.yaml"
    spec = VoiceSpec(root=args.root, language=args.language, gender=args.gender, variant="",
                     model_dir=args.model_dir, vocoder=VocoderSpec(args.vocoder_dir, args.vocoder_dir.name))
    vocoder = load_hifigan(spec.vocoder.config_path, spec.vocoder.generator_path)
    rate = json.loads(spec.vocoder.config_path.read_text())["sampling_rate"]
    with open(config_path, encoding="utf-8") as handle:
        frontend = Frontend.for_voice(spec, yaml.safe_load(handle))
    chunks = [item.text for item in segment_text(args.text_file.read_text(encoding="utf-8"))
              if isinstance(item, Speech)]
    pieces, chunk_seconds = [], []
    for chunk in chunks:
        chunk_started = time.perf_counter()
        tts = _rebuild(Text2Speech, config_path, spec.weights_path)
        with torch.no_grad():
            output = tts(frontend.prepare(chunk).model_input, decode_conf={"alpha": 1.0})
            mel = output["feat_gen_denorm"].T.unsqueeze(0) * DEFAULT_MEL_SCALE
            audio = vocoder(mel).squeeze().numpy()
        pieces.append(np.clip(audio * 32768.0, -32768, 32767).astype(np.int16))
        chunk_seconds.append(round(time.perf_counter() - chunk_started, 3))
    pcm = np.concatenate(pieces)
    soundfile.write(args.output, pcm, rate, subtype="PCM_16")
    json.dump({
        "import_seconds": round(imported - started, 3),
        "chunks": len(chunks),
        "chunk_seconds": chunk_seconds,
        "audio_seconds": round(len(pcm) / rate, 3),
    }, sys.stdout)
    return EXIT_OK


def _rebuild(Text2Speech, config_path: Path, weights: Path):
    """What upstream does per chunk: stats paths written into config.yaml, model built and loaded."""
    import torch

    with open(config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    write_runtime_config(config, config_path.parent, config_path.parent)
    tts = Text2Speech(train_config=config_path, model_file=None, device="cpu")
    tts.model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
    return tts


if __name__ == "__main__":
    sys.exit(main())
