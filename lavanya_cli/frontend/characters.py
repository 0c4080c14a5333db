"""Which characters a voice's front-end can hand its acoustic model, and where each comes from.

A voice's token list is fixed when it is trained; ``add-voice`` compares it with this set to
find characters the voice was never taught (its ``tokens`` step). The set is gathered from the
voice's own resources (the phone dictionary, the number words through the voice's front-end)
and from the unified parser's output for the language's script.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import LavanyaError
from ..fileio import PHONE_DICT_MAX_BYTES, read_regular_text
from ..modeltree.layout import VoiceSpec
from ..modeltree.paths import relative_path

# Sources named after the parser start with this, followed by the letters that give the
# character: they count no words, unlike a dictionary's or a number table's.
PARSER_SOURCE = "parser: "
# Indic scripts sit in 128-code-point blocks from Devanagari (U+0900) to Malayalam (U+0D7F).
_INDIC = range(0x0900, 0x0D80)
_BLOCK_SIZE = 0x80
_SAMPLED_WORDS = 1000  # enough words to tell a language's script


def read_phone_dictionary(path: Path) -> dict[str, str]:
    """``word -> phones`` from a ``phone_dict/<language>`` file (``word phones`` per line), read
    as a regular file of bounded size; the first entry of a word wins, as in the front-end."""
    entries: dict[str, str] = {}
    for line in read_regular_text(path, PHONE_DICT_MAX_BYTES, "phone dictionary").splitlines():
        word, _, phones = line.partition(" ")
        phones = phones.strip()
        if word and phones:
            entries.setdefault(word, phones)
    return entries


def front_end_characters(voice: VoiceSpec, config: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Every character the voice's front-end can hand the acoustic model, with how many words
    of each source give it: the phone dictionary's values, the number words (through the
    voice's own front-end), and the unified parser's output for the language's script (each
    letter, and the script's KA with each sign; the source names the letters). Character voices
    speak the text itself, so for them the dictionary's words count instead of its phones.
    Spaces are left out: the voices were trained with them."""
    from .core import Frontend
    from .kind import FrontendKind, detect_kind

    kind = detect_kind(config, voice.model_dir)
    frontend = Frontend(voice.language, voice.gender, kind, voice.root, variant=voice.variant)
    sources: dict[str, dict[str, int]] = {}

    def add(text: str, source: str) -> None:
        for char in set(text):
            if not char.isspace():
                counts = sources.setdefault(char, {})
                counts[source] = counts.get(source, 0) + 1

    words: list[str] = []
    if frontend.dictionary.exists:
        dictionary = read_phone_dictionary(frontend.dictionary.path)
        where = relative_path(frontend.dictionary.path, voice.root)
        for word, phones in dictionary.items():
            add(word if kind is FrontendKind.CHARACTERS else phones, where)
        words = list(dictionary)
    numbers = frontend.numbers
    if numbers is not None:
        number_words = list(numbers.words.values())
        for word in number_words:
            try:
                add(frontend.prepare(word).model_input, f"numToText/{voice.language}.csv")
            except LavanyaError:
                continue
        words += number_words
    if kind is not FrontendKind.CHARACTERS:
        block = _script_block(words)
        if block is not None:
            for char, letters in _parser_characters(block).items():
                sources.setdefault(char, {})[PARSER_SOURCE + " ".join(letters)] = 0
    return sources


def describe_origin(where: dict[str, int]) -> str:
    """``26 words of phone_dict/hindi; parser: ळ``: where one character of
    ``front_end_characters`` comes from, in words."""
    parts = []
    for source, count in where.items():
        if source.startswith(PARSER_SOURCE):
            letters = source.removeprefix(PARSER_SOURCE).split()
            parts.append(f"{PARSER_SOURCE}{' '.join(letters[:3])}{' …' if len(letters) > 3 else ''}")
        else:
            parts.append(f"{count} word{'s' if count != 1 else ''} of {source}")
    return "; ".join(parts)


def _script_block(words: list[str]) -> int | None:
    """The start of the Indic script block most of ``words``' letters are in."""
    counts: dict[int, int] = {}
    for word in words[:_SAMPLED_WORDS]:
        for char in word:
            if ord(char) in _INDIC and unicodedata.category(char).startswith("L"):
                block = ord(char) & ~(_BLOCK_SIZE - 1)
                counts[block] = counts.get(block, 0) + 1
    return max(counts, key=counts.get) if counts else None


@lru_cache(maxsize=16)
def _parser_characters(block: int) -> dict[str, tuple[str, ...]]:
    """Model characters the unified parser gives for a script: each letter alone and the
    script's KA with each vowel sign or mark (about 100 words through the slow parser, so cached;
    docs/add-voice.md has the time)."""
    from .phones import parse_word

    chars = [chr(code) for code in range(block, block + _BLOCK_SIZE)]
    letters = [c for c in chars if unicodedata.category(c) == "Lo"]
    signs = [c for c in chars if unicodedata.category(c) in ("Mn", "Mc")]
    ka = next((c for c in letters if unicodedata.name(c, "").endswith(" LETTER KA")), None)
    produced: dict[str, list[str]] = {}
    for word in letters + ([ka + sign for sign in signs] if ka else []):
        for char in parse_word(word) or "":
            if word not in produced.setdefault(char, []):
                produced[char].append(word)
    return {char: tuple(words) for char, words in produced.items()}
