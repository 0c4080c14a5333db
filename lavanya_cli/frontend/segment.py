"""Long text to sentences, with inline controls.

Sentences end at ``। ॥ . ? !`` (and the Urdu ``۔ ؟``) and at line breaks; a ``.`` between
digits is a decimal point. A sentence longer than ``max_chars`` is cut at the last comma (or
semicolon) before the cap, else at the last space. Inline tags:

* ``<alpha=1.2>``: speaking rate from here on (ESPnet's ``alpha``; higher is slower);
* ``<sil=500ms>``, ``<sil=2s>``: a pause.

A tag that does not parse is an error naming it, so a typo never ends up spoken.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import LavanyaError

DEFAULT_MAX_CHARS = 300
MAX_SILENCE_SECONDS = 60.0
MAX_ALPHA = 10.0

_TAG = re.compile(r"<([^<>\n]*)>")
_LOOKS_LIKE_TAG = re.compile(r"^\s*/?\s*[A-Za-z_]+\s*(=|$)")
_ALPHA = re.compile(r"^\s*alpha\s*=\s*(\d+(?:\.\d*)?|\.\d+)\s*$", re.IGNORECASE)
_SILENCE = re.compile(r"^\s*sil\s*=\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?:(?<!\d)\.|\.(?!\d)|[।॥?!۔؟])+|\r?\n")
_SOFT_BREAK = re.compile(r"[,;،]\s")


@dataclass(frozen=True)
class Speech:
    """A sentence to speak; ``alpha`` is the rate set by the last ``<alpha=...>`` (None: default)."""

    text: str
    alpha: float | None = None


@dataclass(frozen=True)
class Silence:
    seconds: float


def segment_text(text: str, max_chars: int = DEFAULT_MAX_CHARS) -> list[Speech | Silence]:
    """Sentences and pauses in order. Raises LavanyaError on a malformed tag or when nothing
    in ``text`` can be spoken (empty, only punctuation, only tags)."""
    items: list[Speech | Silence] = []
    alpha: float | None = None
    position = 0
    for match in _TAG.finditer(text):
        control = _parse_tag(match.group(0), match.group(1))
        if control is None:  # "a <b" or "<>" in prose: not a tag, left as text
            continue
        items += _sentences(text[position:match.start()], alpha, max_chars)
        position = match.end()
        if isinstance(control, Silence):
            items.append(control)
        else:
            alpha = control
    items += _sentences(text[position:], alpha, max_chars)
    if not any(isinstance(item, Speech) for item in items):
        raise LavanyaError("nothing to say: the text is empty or has no words, only punctuation or tags")
    return items


def _parse_tag(tag: str, body: str) -> Silence | float | None:
    """A Silence, an alpha, or None for angle brackets that are no tag at all."""
    if not _LOOKS_LIKE_TAG.match(body):
        return None
    if match := _ALPHA.match(body):
        alpha = float(match.group(1))
        if not 0 < alpha <= MAX_ALPHA:
            raise LavanyaError(f"malformed tag {tag}: alpha must be above 0 and at most {MAX_ALPHA:g}")
        return alpha
    if match := _SILENCE.match(body):
        seconds = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
        if not (math.isfinite(seconds) and seconds <= MAX_SILENCE_SECONDS):
            raise LavanyaError(f"malformed tag {tag}: a pause is at most {MAX_SILENCE_SECONDS:g} s")
        return Silence(seconds)
    raise LavanyaError(
        f"malformed tag {tag}: use <alpha=1.2> for the rate or <sil=500ms> / <sil=2s> for a pause"
    )


def _sentences(text: str, alpha: float | None, max_chars: int) -> list[Speech]:
    pieces: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [
        Speech(chunk, alpha)
        for piece in pieces
        for chunk in split_long(" ".join(piece.split()), max_chars)
        if has_words(chunk)
    ]


def has_words(text: str) -> bool:
    """True when ``text`` holds a letter or digit (not only punctuation and spaces)."""
    return any(ch.isalnum() for ch in text)


def split_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a run-on sentence into pieces of at most ``max_chars``, at a comma or space."""
    chunks = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        cut = max((m.end() for m in _SOFT_BREAK.finditer(window)), default=0)
        if cut < max_chars // 2:  # no comma in the second half: cut at a space instead
            cut = window.rfind(" ") + 1 or max_chars
        chunks.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    chunks.append(sentence)
    return chunks
