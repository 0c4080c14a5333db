"""Durations for the demo voice: eSpeak's phoneme timings spread over the model's characters.

The model reads the IITM common-label-set characters that the project's front-end produces; eSpeak
times its own phonemes. The two sequences are aligned by dynamic time warping over broad phone
classes (vowel, nasal, stop, fricative, approximant, pause). Every eSpeak phoneme belongs to a
source word (its text offset says which), and so does every character (the front-end is run word by
word), so a character is kept inside its own word's stretch of audio by a large cost for crossing
words. Each phoneme's time is shared equally among the characters the path pairs it with; the
boundaries are then rounded to mel frames so that the durations add up to the frame count exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

HOP = 256
SEPARATORS = frozenset("$., ")
CROSS_WORD_COST = 4.0

# Broad classes of the model's characters (the real hindi voice's token list).
_TOKEN_CLASSES = {
    "vowel": "aAiIuUeEoOऐऔऑऍR",
    "nasal": "nmNणङञऩMqY",
    "stop": "kgcjJCtdpbBPDTटठडढथधखघक",
    "fricative": "shfzZKGHशष",
    "approximant": "rlywWरऱൽളർ",
}
_TOKEN_CLASS = {char: name for name, chars in _TOKEN_CLASSES.items() for char in chars}

# eSpeak NG mnemonics (first letter after stress marks) by broad class.
_PHONE_CLASS_BY_LETTER = {
    **dict.fromkeys("@V3aeEiIoOuUAY", "vowel"),
    **dict.fromkeys("mnN", "nasal"),
    **dict.fromkeys("kgcJtdpbq", "stop"),
    **dict.fromkeys("sSzZfxhHTDG", "fricative"),
    **dict.fromkeys("rljwvR*", "approximant"),
}


def token_class(char: str) -> str:
    if char in SEPARATORS:
        return "pause"
    return _TOKEN_CLASS.get(char, "other")


def phone_class(name: str) -> str:
    core = name.lstrip("',;%=")
    if not core or core.startswith("_"):
        return "pause"
    if core.endswith("~") or core in ("n^", "n.", "N"):
        return "vowel" if core.endswith("~") else "nasal"
    return _PHONE_CLASS_BY_LETTER.get(core[0], "other")


def class_cost(a: str, b: str) -> float:
    """How badly a character of class ``a`` fits a phoneme of class ``b``."""
    if a == b:
        return 0.0
    if "pause" in (a, b):
        return 1.0
    if "vowel" in (a, b):
        # a nasal character next to a nasalised vowel, or an approximant gliding into one
        return 0.6 if {a, b} & {"nasal", "approximant"} else 1.0
    return 0.5


@dataclass(frozen=True)
class Segment:
    """A stretch of teacher audio: phoneme class, length in samples, source word (-1: none)."""

    kind: str
    samples: int
    word: int


def dtw_shares(costs: np.ndarray) -> np.ndarray:
    """Monotonic DTW path through ``costs`` (tokens x segments), returned as a 0/1 matrix in
    which every token and every segment is used at least once."""
    rows, cols = costs.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            total[i, j] = costs[i - 1, j - 1] + min(total[i - 1, j - 1], total[i - 1, j],
                                                    total[i, j - 1])
    path = np.zeros((rows, cols), dtype=bool)
    i, j = rows, cols
    while i > 0 and j > 0:
        path[i - 1, j - 1] = True
        moves = ((total[i - 1, j - 1], i - 1, j - 1), (total[i - 1, j], i - 1, j),
                 (total[i, j - 1], i, j - 1))
        _, i, j = min(moves, key=lambda move: move[0])
    return path


def token_samples(tokens: str, token_words: list[int], segments: list[Segment]) -> np.ndarray:
    """Samples of teacher audio per model character (floats that add up to the audio length)."""
    costs = np.empty((len(tokens), len(segments)))
    for i, (char, word) in enumerate(zip(tokens, token_words)):
        kind = token_class(char)
        for j, segment in enumerate(segments):
            cost = class_cost(kind, segment.kind)
            if word >= 0 and segment.word >= 0 and word != segment.word:
                cost += CROSS_WORD_COST
            costs[i, j] = cost
    path = dtw_shares(costs)
    lengths = np.array([segment.samples for segment in segments], dtype=np.float64)
    return (path / path.sum(axis=0, keepdims=True)) @ lengths


def frame_durations(samples_per_token: np.ndarray, num_samples: int, hop: int = HOP) -> np.ndarray:
    """Whole mel frames per token, adding up to ESPnet's centred frame count ``1 + n // hop``.

    Frame ``k`` is centred on sample ``k * hop`` and goes to the token whose span holds it.
    """
    num_frames = 1 + num_samples // hop
    bounds = np.concatenate([[0.0], np.cumsum(samples_per_token)])
    frames = [0] + [min(num_frames, max(0, math.ceil(b / hop - 1e-9))) for b in bounds[1:-1]]
    frames.append(num_frames)
    frames = np.maximum.accumulate(np.array(frames))
    return np.diff(frames).astype(np.int64)


def word_of_offsets(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the whitespace-separated words of ``text``."""
    spans, start = [], None
    for index, char in enumerate(text + " "):
        if char.isspace():
            if start is not None:
                spans.append((start, index))
                start = None
        elif start is None:
            start = index
    return spans


def segments_from_phones(phones, num_samples: int, spans: list[tuple[int, int]]) -> list[Segment]:
    """eSpeak phonemes as timed segments; language-switch markers join the phoneme before them."""
    timed = [p for p in phones if not p.is_marker]
    segments: list[Segment] = []
    for index, phone in enumerate(timed):
        end = timed[index + 1].start if index + 1 < len(timed) else num_samples
        length = max(0, end - phone.start)
        if length == 0:
            continue
        word = -1
        if not phone.is_pause:
            word = next((w for w, (s, e) in enumerate(spans) if s <= phone.text_position < e), -1)
        segments.append(Segment(phone_class(phone.name), length, word))
    return segments


def token_words(model_input: str, word_tokens: list[str]) -> list[int] | None:
    """Source word of each model character (-1 for separators), or None where the words' own
    front-end output does not spell the sentence's (then alignment runs without word anchors)."""
    owners = [w for w, chars in enumerate(word_tokens) for _ in chars]
    letters = [i for i, char in enumerate(model_input) if char not in SEPARATORS]
    if "".join(model_input[i] for i in letters) != "".join(word_tokens):
        return None
    result = [-1] * len(model_input)
    for index, owner in zip(letters, owners):
        result[index] = owner
    return result
