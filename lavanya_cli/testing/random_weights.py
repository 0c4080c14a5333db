"""Random weights for a voice tree in the real layout: tests and the benchmark voice use them.

Random weights cost the same compute and memory as trained ones of the same shape. One thing is
set on purpose: the duration predictor's output layer (a random predictor says zero, which
would give no audio at all). By default every token lasts ``frames_per_token`` frames, so
sentence lengths, ``alpha`` and real-time factors behave as with a trained voice. With
``speech_like_durations`` (the benchmark voice) tokens last as in speech instead: long vowels
longer than short ones, consonants shorter, pauses at punctuation, and every token a little
different with its context, ``frames_per_token`` frames on average (``speech_like_weights``).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..fileio import replace_file
from ..modeltree.config import read_config, write_runtime_config
from ..modeltree.layout import CONFIG_NAME, VOCODER_CONFIG_NAME, VOCODER_WEIGHTS_NAME, WEIGHTS_NAME
from ..speech.vocoder import hifigan_from_config, save_upstream_generator


def write_random_acoustic_model(model_dir: Path, seed: int = 0, frames_per_token: float = 6,
                                speech_like_durations: bool = False) -> Path:
    """Build the FastSpeech2 that ``model_dir/config.yaml`` describes (its stats files must
    exist) and save random weights as ``model_dir/model.pth``.

    ``frames_per_token``: every token's duration (a whole number), or with
    ``speech_like_durations`` the average duration of a token in Hindi-like text."""
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
        if speech_like_durations:
            weight, bias = speech_like_weights(model.tts, list(config["token_list"]), frames_per_token, seed)
            durations.weight.copy_(weight.reshape(durations.weight.shape))
            durations.bias.fill_(bias)
        else:
            durations.weight.zero_()
            durations.bias.fill_(math.log(frames_per_token + 1.0))  # the predictor's offset is 1
    target = model_dir / WEIGHTS_NAME
    replace_file(target, lambda handle: torch.save(model.state_dict(), handle))
    return target


# Relative durations in frames (hop 256 at 22.05 kHz: 11.6 ms) by kind of token, for token
# lists like the Fastspeech2_HS ones: romanised phones (capitals: long vowels, aspirates),
# Devanagari letters, '$' before a sentence, punctuation. Scaled to the mean asked for.
LONG_VOWELS = frozenset("AIUEOoऐऔऑऍआईऊएओ")
SHORT_VOWELS = frozenset("aiueअइउऋ")
MARKS = frozenset("qMHंँः")  # nasalisation, visarga: part of the vowel before
FRICATIVES = frozenset("sSzfhशषसहफ़ज़")
PAUSES = {",": 15.0, ".": 12.0, "?": 12.0, "!": 12.0, ";": 15.0, ":": 15.0, "$": 8.0}
DURATION_BY_KIND = {"long": 9.0, "short": 6.0, "mark": 4.0, "fricative": 7.0, "consonant": 5.0,
                    "end": 3.0, "special": 5.0}
# How many made-up sentences of each length the durations are fitted on.
FIT_LENGTHS = (12, 20, 32, 48, 64, 96)
FIT_SENTENCES_PER_LENGTH = 48


def token_kind(token: str) -> str:
    """``long``, ``short`` (vowels), ``mark``, ``fricative``, ``consonant``, ``pause`` (``$``
    and punctuation), ``end`` (``<sos/eos>``) or ``special`` (other ``<...>`` tokens)."""
    if token in PAUSES:
        return "pause"
    if token == "<sos/eos>":
        return "end"
    if token.startswith("<") and token.endswith(">"):
        return "special"
    for kind, members in (("long", LONG_VOWELS), ("short", SHORT_VOWELS), ("mark", MARKS),
                          ("fricative", FRICATIVES)):
        if token in members:
            return kind
    return "consonant"


def token_frames(token: str) -> float:
    """The relative duration of ``token`` in frames (before scaling to the mean asked for)."""
    kind = token_kind(token)
    return PAUSES[token] if kind == "pause" else DURATION_BY_KIND[kind]


def made_up_sentences(tokens: list[str], length: int, count: int, rng) -> list[list[str]]:
    """``count`` token sequences of exactly ``length`` tokens shaped like the front-end's model
    input: ``$``, syllables (a consonant or two and a vowel, sometimes a bare vowel or a nasal
    mark after it), now and then a comma, a full stop last. Kinds the token list lacks are skipped."""
    by_kind: dict[str, list[str]] = {}
    for token in tokens:
        by_kind.setdefault(token_kind(token), []).append(token)
    marks = by_kind.get("mark", [])
    ordinary = [token for token in tokens if token_kind(token) not in ("end", "special")] or tokens

    def pick(first: str, second: str, share: float) -> Callable[[], str]:
        """One token of kind ``first`` (``share`` of the time) or ``second``, or any ordinary one."""
        one, other = by_kind.get(first) or by_kind.get(second), by_kind.get(second) or by_kind.get(first)
        if not one:
            return lambda: rng.choice(ordinary)
        return lambda: rng.choice(one) if rng.random() < share else rng.choice(other)

    # Shares as in Hindi text: two vowels in three long, one consonant in six a fricative.
    vowel, consonant = pick("long", "short", 0.65), pick("fricative", "consonant", 0.17)
    start = "$" if "$" in tokens else None
    stop = "." if "." in tokens else None
    sentences = []
    for _ in range(count):
        out = [start] if start else []
        while len(out) < length - (1 if stop else 0):
            if rng.random() < 0.15:
                out.append(vowel())
            else:
                out.append(consonant())
                if rng.random() < 0.2:
                    out.append(consonant())
                out.append(vowel())
            if marks and rng.random() < 0.08:
                out.append(rng.choice(marks))
            if "," in tokens and rng.random() < 0.03:
                out.append(",")
        out = out[:length - (1 if stop else 0)] + ([stop] if stop else [])
        sentences.append(out)
    return sentences


def speech_like_weights(fastspeech2, tokens: list[str], frames_per_token: float, seed: int = 0):
    """The duration predictor's output layer (weight, bias) for speech-like durations.

    The layer is linear in what the predictor's convolutions make of the encoder's output, so
    a least-squares fit over made-up sentences (``made_up_sentences``, seeded) of the log
    durations ``token_frames`` gives tokens of each kind their length, and each token some
    difference with its neighbours and place, as the random encoder mixes them in. The bias is
    then moved until the rounded durations average ``frames_per_token`` over those sentences."""
    import numpy as np
    import torch

    rng = np.random.default_rng(seed)
    mean_frames = float(np.mean([token_frames(token) for sentence in made_up_sentences(tokens, 64, 64, rng)
                                 for token in sentence]))
    scale = frames_per_token / mean_frames
    eos = len(tokens) - 1  # ESPnet's eos is the last token, appended to every sentence
    index = {token: number for number, token in enumerate(tokens)}
    predictor = fastspeech2.duration_predictor
    captured = []
    hook = predictor.linear.register_forward_hook(lambda module, inputs, output: captured.append(inputs[0]))
    was_training = fastspeech2.training
    fastspeech2.eval()  # no dropout in what the fit sees
    features, targets = [], []
    try:
        with torch.no_grad():
            for length in FIT_LENGTHS:  # one length per batch: no padding to mask
                sentences = made_up_sentences(tokens, length, FIT_SENTENCES_PER_LENGTH, rng)
                ids = torch.tensor([[index[token] for token in sentence] + [eos] for sentence in sentences])
                hs, _ = fastspeech2.encoder(ids, None)
                predictor(hs, None)
                features.append(captured.pop().reshape(-1, predictor.linear.in_features).double())
                targets += [math.log(scale * token_frames(tokens[number]) + predictor.offset)
                            for row in ids.tolist() for number in row]
    finally:
        hook.remove()
        fastspeech2.train(was_training)
    x = torch.cat(features)
    y = torch.tensor(targets, dtype=torch.float64)
    x_mean, y_mean = x.mean(0), y.mean()
    centred = x - x_mean
    ridge = 1e-3 * len(y) * torch.eye(x.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(centred.T @ centred + ridge, centred.T @ (y - y_mean))
    predicted = x @ weight

    def mean_frames_at(bias: float) -> float:
        return float(torch.clamp(torch.round(torch.exp(predicted + bias) - predictor.offset), min=0).mean())

    low, high = float(y_mean - x_mean @ weight) - 2.0, float(y_mean - x_mean @ weight) + 2.0
    for _ in range(40):  # the mean of rounded durations rises with the bias
        middle = (low + high) / 2
        low, high = (middle, high) if mean_frames_at(middle) < frames_per_token else (low, middle)
    return weight.float(), (low + high) / 2


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
