"""Stage 2: train the demo FastSpeech2 (``acoustic``) or HiFi-GAN generator (``vocoder``).

Each runs in its own process on one CPU thread, from the features of stage 1. Every step draws
its batch and its dropout from the seed and the step number alone, and a checkpoint is written
every few hundred steps, so an interrupted run resumes where it stopped and ends with the same
weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from data import load_items  # noqa: E402
from voice_config import HOP, SAMPLE_RATE, acoustic_config, vocoder_config  # noqa: E402

log = logging.getLogger("demo_voice")
CHECKPOINT_EVERY = 250
LOG_EVERY = int(os.environ.get("DEMO_VOICE_LOG_EVERY", 100))


class Checkpoint:
    """``work/<name>/checkpoint.pt``: weights, optimiser and step, replaced atomically."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def load(self, model, optimizer) -> int:
        if not self.path.exists():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        log.info("%s: resuming at step %d", self.path, state["step"])
        return int(state["step"])

    def save(self, model, optimizer, step: int) -> None:
        partial = self.path.with_suffix(".partial")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}, partial)
        os.replace(partial, self.path)


def warmup_then_decay(step: int, peak: float, warmup: int, total: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to a tenth of it at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


# -- acoustic model ---------------------------------------------------------------------------

def frame_batches(lengths: np.ndarray, max_frames: int) -> list[np.ndarray]:
    """Utterance indices grouped by similar length, each group at most ``max_frames`` padded."""
    order = np.argsort(lengths, kind="stable")
    batches, current = [], []
    for index in order:
        if current and (len(current) + 1) * lengths[index] > max_frames:
            batches.append(np.array(current))
            current = []
        current.append(index)
    if current:
        batches.append(np.array(current))
    return batches


def pad(arrays: list[np.ndarray], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(a) for a in arrays])
    out = torch.zeros((len(arrays), int(lengths.max()), *arrays[0].shape[1:]), dtype=dtype)
    for row, array in enumerate(arrays):
        out[row, : len(array)] = torch.as_tensor(array, dtype=dtype)
    return out, lengths


def build_acoustic_model(config: dict):
    from espnet2.tasks.tts import TTSTask

    return TTSTask.build_model(argparse.Namespace(**config))


def acoustic_loss(model, items: list[dict]) -> tuple[torch.Tensor, dict]:
    """FastSpeech2's own loss on precomputed features, normalised by the model's GlobalMVN layers
    exactly as ``ESPnetTTSModel.forward`` would after extracting them."""
    text, text_lengths = pad([i["ids"] for i in items], torch.long)
    feats, feats_lengths = pad([i["feats"] for i in items])
    durations, durations_lengths = pad([i["durations"] for i in items], torch.long)
    pitch, pitch_lengths = pad([i["pitch"] for i in items])
    energy, energy_lengths = pad([i["energy"] for i in items])
    feats, _ = model.normalize(feats, feats_lengths)
    pitch, _ = model.pitch_normalize(pitch, pitch_lengths)
    energy, _ = model.energy_normalize(energy, energy_lengths)
    loss, stats, _ = model.tts(text=text, text_lengths=text_lengths, feats=feats,
                               feats_lengths=feats_lengths, durations=durations,
                               durations_lengths=durations_lengths, pitch=pitch,
                               pitch_lengths=pitch_lengths, energy=energy, energy_lengths=energy_lengths)
    return loss, stats


def train_acoustic(work: Path, steps: int, seed: int, lr: float = 1e-3, max_frames: int = 3000) -> None:
    from build import _runtime_config

    torch.manual_seed(seed)
    model = build_acoustic_model(_runtime_config(acoustic_config(seed), work))
    items = load_items(work / "data" / "train.npz")
    batches = frame_batches(np.array([len(i["feats"]) for i in items]), max_frames)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.98), eps=1e-9)
    checkpoint = Checkpoint(work / "acoustic" / "checkpoint.pt")
    step = checkpoint.load(model, optimizer)
    model.train()
    started, running = time.monotonic(), {}
    while step < steps:
        epoch, position = divmod(step, len(batches))
        order = np.random.default_rng(seed + epoch).permutation(len(batches))
        torch.manual_seed(seed * 1_000_003 + step)
        for group in optimizer.param_groups:
            group["lr"] = warmup_then_decay(step, lr, 300, steps)
        loss, stats = acoustic_loss(model, [items[i] for i in batches[order[position]]])
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        for key in ("l1_loss", "duration_loss", "pitch_loss", "energy_loss"):
            running[key] = running.get(key, 0.0) + float(stats[key]) / LOG_EVERY
        if step % LOG_EVERY == 0:
            log.info("acoustic %d/%d %s (%.2f s/step)", step, steps,
                     " ".join(f"{k}={v:.3f}" for k, v in running.items()),
                     (time.monotonic() - started) / LOG_EVERY)
            started, running = time.monotonic(), {}
        if step % CHECKPOINT_EVERY == 0 or step == steps:
            checkpoint.save(model, optimizer, step)
    torch.save(model.state_dict(), work / "acoustic" / "model.pth")


# -- vocoder ----------------------------------------------------------------------------------

def mel_losses():
    """Log-mel L1 at three resolutions (ESPnet's MelSpectrogramLoss), the middle one the
    acoustic model's own analysis."""
    from espnet2.gan_tts.hifigan.loss import MelSpectrogramLoss

    return [MelSpectrogramLoss(fs=SAMPLE_RATE, n_fft=n_fft, hop_length=n_fft // 4, win_length=n_fft,
                               n_mels=mels, fmin=0, fmax=8000)
            for n_fft, mels in ((512, 40), (1024, 80), (2048, 80))]


def vocoder_batch(items: list[dict], rng: np.random.Generator, size: int, frames: int):
    """Random windows of ``frames`` mel frames and the audio under them."""
    mels, audio = [], []
    for index in rng.integers(0, len(items), size):
        item = items[index]
        start = int(rng.integers(0, max(1, len(item["feats"]) - frames)))
        mel = item["feats"][start : start + frames]
        wave = item["audio"][start * HOP : (start + frames) * HOP]
        mels.append(np.pad(mel, ((0, frames - len(mel)), (0, 0)), mode="edge"))
        audio.append(np.pad(wave, (0, frames * HOP - len(wave))))
    return (torch.from_numpy(np.stack(mels)).transpose(1, 2).float(),
            torch.from_numpy(np.stack(audio))[:, None].float())


def train_vocoder(work: Path, steps: int, seed: int, lr: float = 2e-3, batch_size: int = 8, *,
                  name: str = "vocoder", start: Path | None = None, mels: list[np.ndarray] | None = None) -> None:
    """HiFi-GAN on windows of the teacher audio; ``mels`` replaces the input frames (fine-tuning
    on the acoustic model's own output) and ``start`` gives the generator to begin from."""
    from lavanya_cli.speech.vocoder import hifigan_from_config

    config = vocoder_config(seed)
    torch.manual_seed(seed)
    generator = hifigan_from_config(config, weight_norm=True)
    if start is not None:
        generator.load_state_dict(torch.load(start, map_location="cpu", weights_only=True))
    items = load_items(work / "data" / "train.npz")
    if mels is not None:
        items = [{**item, "feats": mel} for item, mel in zip(items, mels, strict=True)]
    frames = config["segment_size"] // HOP
    losses = mel_losses()
    optimizer = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.8, 0.99))
    checkpoint = Checkpoint(work / name / "checkpoint.pt")
    step = checkpoint.load(generator, optimizer)
    generator.train()
    started, running = time.monotonic(), 0.0
    while step < steps:
        rng = np.random.default_rng([seed, step])
        mel, audio = vocoder_batch(items, rng, batch_size, frames)
        for group in optimizer.param_groups:
            group["lr"] = warmup_then_decay(step, lr, 100, steps)
        generated = generator(mel)
        loss = sum(mel_loss(generated, audio) for mel_loss in losses)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(generator.parameters(), 10.0)
        optimizer.step()
        step += 1
        running += loss.item() / LOG_EVERY
        if step % LOG_EVERY == 0:
            log.info("%s %d/%d mel_loss=%.3f (%.2f s/step)", name, step, steps, running,
                     (time.monotonic() - started) / LOG_EVERY)
            started, running = time.monotonic(), 0.0
        if step % CHECKPOINT_EVERY == 0 or step == steps:
            checkpoint.save(generator, optimizer, step)
    torch.save(generator.state_dict(), work / name / "generator.pth")


def teacher_forced_mels(work: Path, seed: int) -> list[np.ndarray]:
    """The trained FastSpeech2's log-mel frames for each training sentence, given its true
    durations, pitch and energy: frame for frame under the teacher audio, yet as smooth as what
    the model says at synthesis, which is what the vocoder then gets."""
    from build import _runtime_config

    model = build_acoustic_model(_runtime_config(acoustic_config(seed), work))
    model.load_state_dict(torch.load(work / "acoustic" / "model.pth", map_location="cpu", weights_only=True))
    model.eval()
    mels = []
    with torch.no_grad():
        for item in load_items(work / "data" / "train.npz"):
            pitch, _ = model.pitch_normalize(torch.from_numpy(item["pitch"])[None])
            energy, _ = model.energy_normalize(torch.from_numpy(item["energy"])[None])
            output = model.tts.inference(text=torch.from_numpy(item["ids"]),
                                         durations=torch.from_numpy(item["durations"]),
                                         pitch=pitch[0], energy=energy[0], use_teacher_forcing=True)
            mel = model.normalize.inverse(output["feat_gen"].clone()[None])[0][0].numpy()
            if len(mel) != len(item["feats"]):
                raise ValueError(f"{item['text']!r}: {len(mel)} frames from the model, {len(item['feats'])} in the data")
            mels.append(mel)
    return mels


def finetune_vocoder(work: Path, steps: int, seed: int, lr: float = 5e-4) -> None:
    """Continue the vocoder on the acoustic model's teacher-forced frames (``vocoder_gta/``)."""
    mels = teacher_forced_mels(work, seed)
    train_vocoder(work, steps, seed + 1, lr, name="vocoder_gta", start=work / "vocoder" / "generator.pth",
                  mels=mels)


TRAINERS = {"acoustic": train_acoustic, "vocoder": train_vocoder, "finetune": finetune_vocoder}


def main() -> None:
    from build import setup_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=tuple(TRAINERS))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    args = parser.parse_args()
    setup_logging()
    torch.set_num_threads(args.threads)
    train = TRAINERS[args.model]
    options = {} if args.lr is None else {"lr": args.lr}
    train(args.work, args.steps, args.seed, **options)


if __name__ == "__main__":
    main()
