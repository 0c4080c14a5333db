"""Long text to sentences, with inline controls.

Sentences end at ``। ॥ . ? !`` (and the Urdu ``۔ ؟``) and at line breaks; a ``.`` between
digits is a decimal point. A sentence longer than ``max_chars`` is cut at the last comma (or
semicolon) before the cap, else at the last space. Inline tags:

* ``<alpha=1.2>``: speaking rate from here on (ESPnet's ``alpha``; higher is slower);
* ``<sil=500ms>``, ``<sil=2s>``: a pause.

A tag that does not parse, or a ``<alpha=``/``<sil=`` that is never closed, is an error naming
it, so a typo is never spoken. Numbers in tags are checked by ``lavanya_cli.limits`` like every
other number a user gives, and the pauses of one text together are capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import LavanyaError, option
from ..limits import TEXT_SILENCE_MAX_SECONDS, checked_alpha, checked_pause

DEFAULT_MAX_CHARS = 300

_TAG = re.compile(r"<([^<>\n]*)>")
_LOOKS_LIKE_TAG = re.compile(r"^\s*/?\s*[A-Za-z_]+\s*(=|$)")
# What starts a tag in text that is not inside a complete one: "<sil=1s आप" (never closed),
# the "<alpha=" of "<alpha=<sil=1s>>". Prose such as "x < 5" or "a <b" does not match.
_TAG_OPENER = re.compile(r"<\s*/?\s*(?:[A-Za-z_]+\s*=|(?:alpha|sil)\b)", re.IGNORECASE)
_NUMBER = r"(\d{1,12}(?:\.\d{0,12})?|\.\d{1,12})"
_ALPHA = re.compile(rf"^\s*alpha\s*=\s*{_NUMBER}\s*$", re.IGNORECASE)
_SILENCE = re.compile(rf"^\s*sil\s*=\s*{_NUMBER}\s*(ms|s)\s*$", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?:(?<!\d)\.|\.(?!\d)|[।॥?!۔؟])+|\r?\n")
_SOFT_BREAK = re.compile(r"[,;،]\s")
_TAG_HINT = "use <alpha=1.2> for the rate or <sil=500ms> / <sil=2s> for a pause"


@dataclass(frozen=True)
class Speech:
    """A sentence to speak; ``alpha`` is the rate set by the last ``<alpha=...>`` (None: default)."""

    text: str
    alpha: float | None = None


@dataclass(frozen=True)
class Silence:
    """A pause: from a ``<sil=...>`` tag, or ``between_sentences`` (``sentence_silence``, which
    goes with the sentence after it if that one turns out to have nothing speakable)."""

    seconds: float
    between_sentences: bool = False


def segment_text(text: str, max_chars: int = DEFAULT_MAX_CHARS,
                 sentence_silence: float = 0.0) -> list[Speech | Silence]:
    """Sentences and pauses in order, with a pause of ``sentence_silence`` seconds before every
    sentence but the first. Raises LavanyaError on a malformed tag, when nothing in ``text`` can
    be spoken (empty, only punctuation, only tags), or when its pauses add up to more than
    ``TEXT_SILENCE_MAX_SECONDS``. ``sentence_silence`` and the numbers in tags are checked here,
    in ``lavanya_cli.limits``' ranges: every text, from any caller, is cut by this function."""
    sentence_silence = checked_pause(sentence_silence)
    items: list[Speech | Silence] = []
    alpha: float | None = None
    position = 0
    for match in _TAG.finditer(text):
        control = _parse_tag(match.group(0), match.group(1))
        if control is None:  # "<>" or "<3 apples>" in prose: not a tag, left as text
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
    return _with_sentence_silence(items, sentence_silence)


def _with_sentence_silence(items: list[Speech | Silence], seconds: float) -> list[Speech | Silence]:
    """``items`` with a pause before each sentence after the first; all pauses together capped."""
    result: list[Speech | Silence] = []
    total, spoken = 0.0, False
    for item in items:
        if isinstance(item, Speech):
            if spoken and seconds > 0:
                result.append(Silence(seconds, between_sentences=True))
                total += seconds
            spoken = True
        else:
            total += item.seconds
        if total > TEXT_SILENCE_MAX_SECONDS:
            raise LavanyaError(f"the text asks for more than {TEXT_SILENCE_MAX_SECONDS:g} s of pauses "
                               f"(<sil=...> tags and {option('sentence_silence')} together); "
                               "shorten them or split the text")
        result.append(item)
    return result


def _parse_tag(tag: str, body: str) -> Silence | float | None:
    """A Silence, an alpha, or None for angle brackets that are no tag at all."""
    if not (_LOOKS_LIKE_TAG.match(body) or _TAG_OPENER.match(tag)):
        return None
    if match := _ALPHA.match(body):
        return checked_alpha(float(match.group(1)), f"tag {tag}: alpha")
    if match := _SILENCE.match(body):
        seconds = float(match.group(1)) / (1000 if match.group(2).lower() == "ms" else 1)
        return Silence(checked_pause(seconds, f"tag {tag}: a pause"))
    raise LavanyaError(f"malformed tag {tag}: {_TAG_HINT}")


def _sentences(text: str, alpha: float | None, max_chars: int) -> list[Speech]:
    if opener := _TAG_OPENER.search(text):
        fragment = text[opener.start():].split("\n", 1)[0]
        fragment = fragment if len(fragment) <= 30 else fragment[:30] + "…"
        raise LavanyaError(f"malformed tag {fragment!r}: it has no closing '>'; {_TAG_HINT}")
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
    """Cut a run-on sentence into pieces of at most ``max_chars``, at a comma or space (in time
    linear in its length, however long)."""
    chunks = []
    start = 0
    while len(sentence) - start > max_chars:
        window = sentence[start:start + max_chars + 1]
        cut = max((m.end() for m in _SOFT_BREAK.finditer(window)), default=0)
        if cut < max_chars // 2:  # no comma in the second half: cut at a space instead
            cut = window.rfind(" ") + 1 or max_chars
        chunks.append(window[:cut].strip())
        start += cut
        while start < len(sentence) and sentence[start] == " ":
            start += 1
    chunks.append(sentence[start:])
    return chunks
