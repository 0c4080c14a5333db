"""Step 1 of the front-end: raw text to phrases of words.

Upstream's cleaner (text_preprocess_for_inference.py) ends a phrase at ``. , ; । !`` and line
breaks, drops ``? : ( ) | & ’ ‘ "`` and ``/ '``, and turns hyphens and dashes into spaces. Here
also: a ``.`` or ``,`` between digits belongs to the number (``3.5``, ``1,00,000``: the numbers
step reads group commas as the sign of an amount), digits written in an Indic script count as
digits, and the double danda ``॥`` ends a phrase like ``।``.
"""

from __future__ import annotations

import re
import unicodedata

# Marks that end a phrase; a "." or "," between two digits is part of a number instead.
_PHRASE_END = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[;।॥!\r\n]")
_DROPPED = re.compile(r"[?:()|&’‘\"/']")
_DASHES = re.compile(r"[-–—‐‑]")
# A digit run glued to letters ("2024में") becomes its own word.
_DIGIT_EDGE = re.compile(r"(?<=\d)(?=[^\d\s.,])|(?<=[^\d\s.,])(?=\d)")


def lone_surrogate(text: str) -> int | None:
    """Where ``text`` holds a lone surrogate (``"\\ud800"`` escaped in JSON: half a character,
    which no UTF-8 text can hold), or None: such text can be neither spoken nor written back."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def ascii_digits(text: str) -> str:
    """Replace every decimal digit (Devanagari ४, Bengali ৪, ...) with its ASCII digit."""
    if text.isascii():
        return text
    return "".join(
        str(unicodedata.decimal(ch)) if ch.isdecimal() and not ch.isascii() else ch for ch in text
    )


def clean(text: str) -> list[list[str]]:
    """Split ``text`` into phrases, each a list of words, with upstream's punctuation rules."""
    text = ascii_digits(text)
    phrases = []
    for phrase in _PHRASE_END.split(text):
        phrase = _DASHES.sub(" ", _DROPPED.sub("", phrase))
        words = _DIGIT_EDGE.sub(" ", phrase).split()
        if words:
            phrases.append(words)
    return phrases
