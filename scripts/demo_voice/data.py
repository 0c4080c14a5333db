"""Stage 1: the training and held-out data, from the corpus to ESPnet features and statistics.

For every sentence: the project's front-end gives the model input (the same call synthesis makes),
eSpeak NG speaks the sentence with phoneme timings, ``align`` turns those timings into whole mel
frames per model character, and the ESPnet model's own extractors give log-mel frames, token
averaged pitch and energy. Statistics are accumulated as ESPnet's ``collect_stats`` writes them.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

import align
from teacher import Phone, Teacher
from voice_config import HOP, SAMPLE_RATE, TOKENS

log = logging.getLogger("demo_voice")
# Silence put around eSpeak's audio, which starts at once and stops short: it gives the phrase
# marks "$" at the start and "." at the end a pause of their own to learn.
PAD = int(0.08 * SAMPLE_RATE)


def make_frontend(root: Path):
    """The project's front-end for hindi/male, reading resources (numToText) from ``root``."""
    from lavanya_cli.frontend import Frontend, FrontendKind

    return Frontend("hindi", "male", FrontendKind.PHRASES, root, tokens=TOKENS)


def word_pieces(frontend, sentence: str) -> list[str]:
    """The front-end's characters for each whitespace-separated word of ``sentence`` on its own."""
    from lavanya_cli.errors import LavanyaError

    pieces = []
    for start, end in align.word_of_offsets(sentence):
        try:
            prepared = frontend.prepare(sentence[start:end]).model_input
        except LavanyaError:  # punctuation alone
            prepared = ""
        pieces.append("".join(ch for ch in prepared if ch not in align.SEPARATORS))
    return pieces


def token_ids(preprocess, model_input: str) -> np.ndarray:
    """Token ids exactly as ESPnet's Text2Speech makes them from the model input string."""
    ids = preprocess("utt", {"text": model_input})["text"]
    if len(ids) != len(model_input):
        raise ValueError(f"tokenizer split {model_input!r} into {len(ids)} tokens")
    return np.asarray(ids, dtype=np.int64)


def teach(sentence: str, frontend, teacher: Teacher, preprocess) -> dict | None:
    """Audio, token ids and frame durations for one sentence (None if the front-end cannot say
    all of it, or it has Latin-script words: eSpeak reads those as English while the model input
    has them in Hindi characters or spelled letter by letter)."""
    from lavanya_cli.frontend.phones import is_latin_word

    prepared = frontend.prepare(sentence)
    if prepared.unpronounced or any(is_latin_word(word) for word in sentence.split()):
        return None
    rendering = teacher.render(sentence)
    audio = np.concatenate([np.zeros(PAD, np.float32), rendering.audio, np.zeros(PAD, np.float32)])
    phones = [Phone("_", 0, -1)] + [Phone(p.name, p.start + PAD, p.text_position)
                                    for p in rendering.phones]
    phones.append(Phone("_", PAD + len(rendering.audio), -1))
    spans = align.word_of_offsets(sentence)
    segments = align.segments_from_phones(phones, len(audio), spans)
    owners = align.token_words(prepared.model_input, word_pieces(frontend, sentence))
    anchored = owners is not None
    if owners is None:
        owners = [-1] * len(prepared.model_input)
    samples = align.token_samples(prepared.model_input, owners, segments)
    durations = align.frame_durations(samples, len(audio), HOP)
    return {
        "text": sentence,
        "model_input": prepared.model_input,
        "ids": token_ids(preprocess, prepared.model_input),
        "durations": np.append(durations, 0),  # the <sos/eos> ESPnet appends takes no time
        "audio": audio,
        "anchored": anchored,
    }


def build_extractor_model(config: dict):
    """The ESPnet TTS model of ``config`` without normalisation: its feature extractors only."""
    from espnet2.tasks.tts import TTSTask

    plain = {**config, "normalize": None, "pitch_normalize": None, "energy_normalize": None}
    return TTSTask.build_model(argparse.Namespace(**plain))


def extract(model, item: dict) -> dict:
    """Log-mel frames, token-averaged pitch and energy with the model's own extractors."""
    import torch

    speech = torch.from_numpy(item["audio"])[None]
    speech_lengths = torch.tensor([speech.shape[1]])
    durations = torch.from_numpy(item["durations"])[None]
    durations_lengths = torch.tensor([durations.shape[1]])
    with torch.no_grad():
        feats, feats_lengths = model.feats_extract(speech, speech_lengths)
        if int(feats_lengths[0]) != int(durations.sum()):
            raise ValueError(f"{item['text']!r}: {int(feats_lengths[0])} frames, "
                             f"durations add up to {int(durations.sum())}")
        aux = dict(feats_lengths=feats_lengths, durations=durations,
                   durations_lengths=durations_lengths)
        pitch, _ = model.pitch_extract(speech, speech_lengths, **aux)
        energy, _ = model.energy_extract(speech, speech_lengths, **aux)
    return {"feats": feats[0].numpy(), "pitch": pitch[0].numpy(), "energy": energy[0].numpy()}


class StatsAccumulator:
    """count / sum / sum_square per feature, as ESPnet's collect_stats stores them."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, np.ndarray]] = {}

    def add(self, kind: str, frames: np.ndarray) -> None:
        entry = self.values.setdefault(kind, {"count": np.int64(0), "sum": 0.0, "sum_square": 0.0})
        frames = frames.astype(np.float64)
        entry["count"] = np.int64(entry["count"] + frames.shape[0])
        entry["sum"] = entry["sum"] + frames.sum(axis=0)
        entry["sum_square"] = entry["sum_square"] + (frames**2).sum(axis=0)

    def save(self, directory: Path) -> None:
        from lavanya_cli.modeltree.layout import STATS_NAMES

        directory.mkdir(parents=True, exist_ok=True)
        for kind, entry in self.values.items():
            np.savez(directory / STATS_NAMES[kind], count=entry["count"],
                     sum=entry["sum"].astype(np.float32), sum_square=entry["sum_square"].astype(np.float32))


def read_corpus(path: Path, limit: int | None) -> list[str]:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return lines[:limit] if limit else lines


def build_data(corpus_dir: Path, work: Path, root: Path, config: dict, limit: int | None) -> dict:
    """Write ``work/data/{train,heldout}.npz`` and ``work/stats/*.npz``; return a summary."""
    from espnet2.tasks.tts import TTSTask

    frontend = make_frontend(root)
    teacher = Teacher()
    preprocess = TTSTask.build_preprocess_fn(argparse.Namespace(**config), train=False)
    model = build_extractor_model(config)
    stats = StatsAccumulator()
    summary = {}
    for split in ("train", "heldout"):
        sentences = read_corpus(corpus_dir / f"{split}.txt", limit)
        items, skipped, unanchored = [], [], 0
        for sentence in sentences:
            item = teach(sentence, frontend, teacher, preprocess)
            if item is None:
                skipped.append(sentence)
                continue
            item.update(extract(model, item))
            unanchored += not item["anchored"]
            if split == "train":
                stats.add("feats", item["feats"])
                stats.add("pitch", item["pitch"])
                stats.add("energy", item["energy"])
            items.append(item)
        save_items(work / "data" / f"{split}.npz", items)
        summary[split] = {"sentences": len(items), "skipped": skipped, "unanchored": unanchored,
                          "seconds": sum(len(i["audio"]) for i in items) / SAMPLE_RATE}
        log.info("%s: %d sentences (%.0f s of audio), %d left out (words the front-end cannot say), "
                 "%d aligned without word anchors", split, len(items), summary[split]["seconds"],
                 len(skipped), unanchored)
    stats.save(work / "stats")
    return summary


_ARRAYS = ("ids", "durations", "audio", "feats", "pitch", "energy")


def save_items(path: Path, items: list[dict]) -> None:
    """All utterances of a split in one npz (plain arrays, no pickles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"text": np.array([i["text"] for i in items]),
              "model_input": np.array([i["model_input"] for i in items])}
    for key in _ARRAYS:
        arrays[key] = np.concatenate([i[key] for i in items])
        arrays[f"{key}_lengths"] = np.array([len(i[key]) for i in items])
    np.savez(path, **arrays)


def load_items(path: Path) -> list[dict]:
    data = np.load(path, allow_pickle=False)
    items = [{"text": str(t), "model_input": str(m)} for t, m in zip(data["text"], data["model_input"])]
    for key in _ARRAYS:
        whole = data[key]  # each access to an NpzFile member reads it again: once per key
        bounds = np.concatenate([[0], np.cumsum(data[f"{key}_lengths"])])
        for item, start, end in zip(items, bounds[:-1], bounds[1:]):
            item[key] = whole[start:end]
    return items
