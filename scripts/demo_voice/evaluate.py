"""Stage 4: how well the installed demo voice says the 20 held-out sentences.

The voice is loaded through the project's own path (``lavanya_cli.speech.voice.Voice``, as ``lavanya
synth`` loads every voice) and compared with eSpeak NG's rendering of the same sentences:

* duration: the demo's audio length over eSpeak's;
* content: DTW distance between the demo's log-mel frames and eSpeak's for the same sentence,
  against the mean distance to eSpeak's other held-out sentences (frames quieter than 40 dB
  below the utterance's loudest dropped, each mel band then normalised per utterance). Below 1
  means the demo says that sentence rather than any sentence; an untrained voice of the same shape
  (``lavanya_cli.testing.random_weights``, durations fixed to the corpus mean) shows where chance lies;
* a spectrogram of one held-out sentence, eSpeak beside the demo.

The figures go into the model root's README between two marker lines.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from data import load_items
from teacher import Teacher
from voice_config import SAMPLE_RATE, vocoder_config

log = logging.getLogger("demo_voice")
SILENCE_DB = 40.0
README_BEGIN = "<!-- demo-voice figures: written by scripts/demo_voice/build.py -->"
README_END = "<!-- end of demo-voice figures -->"
PLOT_NAME = "demo_voice_spectrogram.png"


def log_mel(audio: np.ndarray) -> np.ndarray:
    """ESPnet's LogMelFbank with the voice's settings: [frames, 80] natural-log power."""
    import torch
    from espnet2.tts.feats_extract.log_mel_fbank import LogMelFbank

    extractor = LogMelFbank(fs=SAMPLE_RATE, n_fft=1024, hop_length=256, win_length=1024,
                            fmin=0, fmax=8000, n_mels=80)
    with torch.no_grad():
        mel, _ = extractor(torch.from_numpy(audio.astype(np.float32))[None])
    return mel[0].numpy()


def comparable(mel: np.ndarray) -> np.ndarray:
    """Speech frames only, each band normalised to zero mean and unit variance."""
    loudness = np.log(np.exp(mel).sum(axis=1) + 1e-20)
    speech = mel[loudness >= loudness.max() - SILENCE_DB * np.log(10) / 10]
    return (speech - speech.mean(axis=0)) / (speech.std(axis=0) + 1e-5)


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean frame distance along the best monotonic alignment."""
    import librosa

    cost, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return float(cost[-1, -1] / len(path))


def content_scores(spoken: list[np.ndarray], reference: list[np.ndarray]) -> dict:
    """Same-sentence distance over other-sentence distance, overall and per sentence."""
    a = [comparable(m) for m in spoken]
    b = [comparable(m) for m in reference]
    matrix = np.array([[dtw_distance(x, y) for y in b] for x in a])
    same = np.diag(matrix)
    others = (matrix.sum(axis=1) - same) / (len(b) - 1)
    return {
        "ratio": float(same.mean() / others.mean()),
        "same": float(same.mean()),
        "other": float(others.mean()),
        "nearest_is_own": int(sum(int(np.argmin(row)) == i for i, row in enumerate(matrix))),
        "sentences": len(same),
    }


def speak_all(spec, sentences: list[str]) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Audio of each sentence through ``Voice`` (loaded once), the acoustic model's log-mel
    frames that the vocoder was given, and the load time."""
    from lavanya_cli.speech.voice import Voice

    started = time.monotonic()
    voice = Voice.load(spec)
    load_seconds = time.monotonic() - started
    audio, mels = [], []
    for text in sentences:
        chunks = list(voice.synthesize(text))
        audio.append(np.concatenate([chunk.samples for chunk in chunks]))
        mels.append(np.concatenate([chunk.mel for chunk in chunks if chunk.mel is not None]))
    return audio, mels, load_seconds


def untrained_voice(target: Path, work: Path, seed: int, frames_per_token: int):
    """A copy of the installed voice with random weights (same shapes, same files otherwise)."""
    from lavanya_cli.testing.random_weights import write_random_acoustic_model, write_random_vocoder
    from lavanya_cli.modeltree.layout import ModelRoot

    root = work / "untrained"
    shutil.rmtree(root, ignore_errors=True)
    model_dir = root / "hindi" / "male" / "model"
    shutil.copytree(target / "hindi" / "male" / "model", model_dir)
    (model_dir / "model.pth").unlink()
    write_random_acoustic_model(model_dir, seed=seed, frames_per_token=frames_per_token)
    write_random_vocoder(root / "vocoder" / "male" / "aryan" / "hifigan", vocoder_config(seed), seed=seed)
    return ModelRoot(root).find("hindi", "male")


def plot(espeak: np.ndarray, demo: np.ndarray, text: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
    low = min(espeak.min(), demo.min())
    high = max(espeak.max(), demo.max())
    for axis, mel, title in ((axes[0], espeak, "eSpeak NG (teacher)"), (axes[1], demo, "demo voice")):
        axis.imshow(mel.T, origin="lower", aspect="auto", vmin=max(low, high - 12), vmax=high,
                    cmap="magma", extent=(0, len(mel) * 256 / SAMPLE_RATE, 0, 80))
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("seconds", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[0].set_ylabel("mel band", fontsize=8)
    figure.suptitle("held-out sentence 1 (log-mel, 80 bands)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=72)
    plt.close(figure)


def evaluate(work: Path, target: Path, seed: int, readme: Path | None) -> dict:
    from lavanya_cli.modeltree.layout import ModelRoot

    heldout = load_items(work / "data" / "heldout.npz")
    train = load_items(work / "data" / "train.npz")
    sentences = [item["text"] for item in heldout]
    teacher = Teacher()
    espeak_audio = [teacher.render(text).audio for text in sentences]
    espeak_mels = [log_mel(audio) for audio in espeak_audio]

    spec = ModelRoot(target).find("hindi", "male")
    started = time.monotonic()
    demo_audio, acoustic_mels, load_seconds = speak_all(spec, sentences)
    synth_seconds = time.monotonic() - started - load_seconds
    demo_mels = [log_mel(audio) for audio in demo_audio]

    frames = sum(int(i["durations"].sum()) for i in train)
    tokens = sum(len(i["ids"]) for i in train)
    frames_per_token = max(1, round(frames / tokens))
    chance_spec = untrained_voice(target, work, seed, frames_per_token)
    chance_audio, _, _ = speak_all(chance_spec, sentences)

    ratios = np.array([len(d) / len(e) for d, e in zip(demo_audio, espeak_audio)])
    results = {
        "duration_ratio": {"mean": float(ratios.mean()), "min": float(ratios.min()), "max": float(ratios.max())},
        "content": content_scores(demo_mels, espeak_mels),
        "content_acoustic_frames": content_scores(acoustic_mels, espeak_mels),
        "content_untrained": content_scores([log_mel(a) for a in chance_audio], espeak_mels),
        "untrained_frames_per_token": frames_per_token,
        "audio_seconds": float(sum(len(a) for a in demo_audio) / SAMPLE_RATE),
        "synthesis_seconds": synth_seconds,
        "load_seconds": load_seconds,
        "sizes": {str(p.relative_to(target)): p.stat().st_size for p in _voice_files(target)},
    }
    (work / "evaluation.json").write_text(json.dumps(results, indent=1))
    plot_path = (target if readme else work) / PLOT_NAME
    plot(espeak_mels[0], demo_mels[0], sentences[0], plot_path)
    log.info("evaluation: %s", json.dumps(results))
    if readme is not None:
        timings_path = work / "timings.json"
        timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
        summary = json.loads((work / "data" / "summary.json").read_text())
        write_readme(readme, render_figures(results, timings, summary))
    return results


def _voice_files(target: Path) -> list[Path]:
    directories = [target / "hindi" / "male" / "model", target / "vocoder" / "male" / "aryan" / "hifigan"]
    return sorted(p for d in directories for p in d.iterdir() if p.is_file())


def render_figures(results: dict, timings: dict, summary: dict) -> str:
    duration = results["duration_ratio"]
    content, chance = results["content"], results["content_untrained"]
    sizes = results["sizes"]
    size = sum(sizes.values())
    from build import STAGES

    stage_times = ", ".join(f"{stage} {timings[stage] / 60:.1f} min" for stage in STAGES if stage in timings)
    total = sum(timings.get(stage, 0.0) for stage in STAGES) / 60
    acoustic = results["content_acoustic_frames"]
    verdict = "meets" if content["ratio"] <= 0.6 else "misses"
    lines = [
        README_BEGIN,
        f"Measured by the build on the {content['sentences']} held-out sentences "
        f"(`scripts/demo_voice/corpus/heldout.txt`), synthesized through `lavanya_cli.speech.voice.Voice`:",
        "",
        "| measure | demo voice | untrained voice, same shape |",
        "|---|---|---|",
        f"| duration / eSpeak's (aim 0.8-1.25) | {duration['mean']:.2f} "
        f"(min {duration['min']:.2f}, max {duration['max']:.2f}) | set: {results['untrained_frames_per_token']} "
        f"frames per character |",
        f"| content: same-sentence / other-sentence DTW distance (at most 0.6) | {content['ratio']:.2f} "
        f"| {chance['ratio']:.2f} |",
        f"| the same, on the acoustic model's log-mel frames before the vocoder | {acoustic['ratio']:.2f} | |",
        f"| sentences whose nearest eSpeak rendering is their own | {content['nearest_is_own']} of "
        f"{content['sentences']} | {chance['nearest_is_own']} of {chance['sentences']} |",
        "",
        f"The content ratio {verdict} the 0.6 aim; chance is about 1.",
        "",
        f"Training data: {summary['train']['sentences']} sentences, {summary['train']['seconds'] / 60:.1f} min "
        f"of eSpeak audio ({len(summary['train']['skipped'])} Latin-script sentences left out: eSpeak "
        f"reads them as English). Build stages on this machine (2 CPU cores shared with other work): "
        f"{stage_times}; {total:.0f} min in all. "
        f"Synthesis of the held-out set: {results['audio_seconds']:.0f} s of audio in "
        f"{results['synthesis_seconds']:.1f} s after a {results['load_seconds']:.1f} s load. "
        f"Files: {size / 1e6:.1f} MB in all "
        f"({', '.join(f'{name} {size / 1e6:.2f} MB' for name, size in sizes.items() if size > 100_000)}).",
        "",
        f"![eSpeak NG and the demo voice on held-out sentence 1]({PLOT_NAME})",
        README_END,
    ]
    return "\n".join(lines)


def write_readme(path: Path, block: str) -> None:
    """Replace the figures between the markers (or append them) without touching the rest."""
    from lavanya_cli.fileio import replace_file

    text = path.read_text(encoding="utf-8")
    if README_BEGIN in text and README_END in text:
        head, rest = text.split(README_BEGIN, 1)
        tail = rest.split(README_END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    replace_file(path, lambda handle: handle.write(text.encode("utf-8")))
