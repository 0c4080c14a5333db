#!/usr/bin/env python3
"""How far the exported engines, and OpenVINO's bfloat16 in particular, drift from torch on the
trained demo voice's 20 held-out sentences, and whether the speech still says them.

Usage: PYTHONPATH=. python scripts/onnx_precision.py [--models ROOT] [--json FILE]

For each engine (torch, ONNX Runtime f32, OpenVINO f32, OpenVINO bf16 where the CPU has it),
the held-out sentences (scripts/demo_voice/corpus/heldout.txt) are spoken and measured:

OpenVINO bf16 is measured as ``load_onnx_engine`` runs it (vocoder in bf16, acoustic model in f32)
and with the acoustic model in bf16 too (``-acoustic-too``).

* the acoustic model's log-mel against the f32 engine's (max and mean |difference|; frame
  counts that differ, as bf16 can move a duration by a frame, are compared along a DTW path);
* the audio's log-mel (ESPnet's LogMelFbank, as scripts/demo_voice/evaluate.py) against the
  f32 engine's audio, mean |difference| in dB over speech frames;
* the content ratio against eSpeak NG (scripts/demo_voice/evaluate.py): at most 0.6 is the
  demo voice's aim (Fastspeech2_HS/README.md).

The voice is exported into a temporary cache first (``lavanya_cli.speech.export``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "demo_voice"))
NATS_TO_DB = 10 / np.log(10)


def spoken(voice, engines, sentences: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(acoustic log-mels, audio) of each sentence through ``engines`` (None: torch)."""
    mels, audio = [], []
    for sentence in sentences:
        plan = [u for u in voice.plan(sentence) if u.text]
        if engines is None:
            chunks = list(voice.render(plan))
            mels.append(np.concatenate([c.mel for c in chunks]))
            audio.append(np.concatenate([c.samples for c in chunks]))
            continue
        pieces = [engines.mel(u.model_input, u.alpha) for u in plan]
        mels.append(np.concatenate(pieces))
        audio.append(np.concatenate([engines.vocoder.audio(m * voice.mel_scale) for m in pieces]))
    return mels, audio


def mel_distance(ours: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    """Max and mean |difference| of log-mels (nats), DTW-aligned where the frame counts differ."""
    from evaluate import dtw_distance

    max_abs, means, moved = 0.0, [], 0
    for a, b in zip(ours, reference):
        if a.shape == b.shape:
            difference = np.abs(a - b)
            max_abs = max(max_abs, float(difference.max()))
            means.append(float(difference.mean()))
        else:
            moved += 1
            means.append(dtw_distance(a, b) / np.sqrt(a.shape[1]))
    return {"max_abs": max_abs, "mean_abs": float(np.mean(means)), "mean_abs_db": float(np.mean(means) * NATS_TO_DB),
            "sentences_with_other_frame_counts": moved}


def audio_distance(ours: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    """Mean |difference| in dB between the audio's log-mels over the reference's speech frames."""
    from evaluate import SILENCE_DB, dtw_distance, log_mel

    differences = []
    for a, b in zip(ours, reference):
        x, y = log_mel(a), log_mel(b)
        if x.shape != y.shape:
            differences.append(dtw_distance(x, y) / np.sqrt(x.shape[1]))
            continue
        loudness = np.log(np.exp(y).sum(axis=1) + 1e-20)
        speech = loudness >= loudness.max() - SILENCE_DB * np.log(10) / 10
        differences.append(float(np.abs(x[speech] - y[speech]).mean()))
    return {"mean_abs_db": float(np.mean(differences) * NATS_TO_DB)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=None, help="model root (default: the bundled demo voice)")
    parser.add_argument("--no-content", action="store_true", help="skip eSpeak and the content ratio")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from lavanya_cli.modeltree.layout import BUNDLED_ROOT, find_voice
    from lavanya_cli.speech.export import ensure_exports
    from lavanya_cli.speech.export_store import find_acoustic_export
    from lavanya_cli.speech.onnx_engine import OnnxAcoustic, load_onnx_engine, openvino_bf16_supported
    from lavanya_cli.speech.voice import Voice

    sentences = [line.strip() for line in (HERE / "demo_voice/corpus/heldout.txt").read_text(encoding="utf-8")
                 .splitlines() if line.strip()]
    spec = find_voice("hindi", "male", models=args.models or BUNDLED_ROOT)
    voice = Voice.load(spec)
    variants = {"onnxruntime-f32": ("onnx", "f32"), "openvino-f32": ("openvino", "f32")}
    if openvino_bf16_supported():
        variants["openvino-bf16"] = ("openvino", "bf16")
    results: dict = {"voice": spec.name, "root": str(spec.root), "sentences": len(sentences),
                     "bf16_supported": "openvino-bf16" in variants}
    with tempfile.TemporaryDirectory(prefix="lavanya-precision-") as cache:
        ensure_exports(spec, Path(cache))
        outputs = {"torch": spoken(voice, None, sentences)}
        for name, (engine, precision) in variants.items():
            engines = load_onnx_engine(spec, engine=engine, precision=precision, cache=Path(cache))
            outputs[name] = spoken(voice, engines, sentences)
            if precision == "bf16":  # what load_onnx_engine does not do: the acoustic model in bf16 too
                engines.acoustic = OnnxAcoustic.from_export(find_acoustic_export(spec, Path(cache)), voice.config,
                                                            spec.stats_path("feats"), engine=engine,
                                                            precision=precision)
                outputs[name + "-acoustic-too"] = spoken(voice, engines, sentences)
    reference_mels, reference_audio = outputs["onnxruntime-f32"]
    espeak = None
    if not args.no_content:
        from evaluate import content_scores, log_mel
        from teacher import Teacher

        teacher = Teacher()
        espeak = [log_mel(teacher.render(text).audio) for text in sentences]
    for name, (mels, audio) in outputs.items():
        entry = {"mel_vs_onnxruntime_f32": mel_distance(mels, reference_mels),
                 "audio_vs_onnxruntime_f32": audio_distance(audio, reference_audio)}
        if espeak is not None:
            entry["content"] = content_scores([log_mel(a) for a in audio], espeak)
        results[name] = entry
        content = f"content ratio {entry['content']['ratio']:.3f}" if "content" in entry else ""
        print(f"{name:16} mel max |d| {entry['mel_vs_onnxruntime_f32']['max_abs']:.4f} nats, mean "
              f"{entry['mel_vs_onnxruntime_f32']['mean_abs_db']:.3f} dB "
              f"(other frame counts: {entry['mel_vs_onnxruntime_f32']['sentences_with_other_frame_counts']}); "
              f"audio log-mel mean |d| {entry['audio_vs_onnxruntime_f32']['mean_abs_db']:.3f} dB; {content}",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
