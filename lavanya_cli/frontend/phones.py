"""Step 3: a word becomes the phone characters the model was trained on.

Sources, in order: the language's phone dictionary (``word phones`` per line, phones already in
model characters; read through its cached table, ``tables``), then the unified parser (PyPI
``indic-unified-parser``), whose common-label-set labels map to one character each through
``LABEL_TO_CHAR``. Latin-script words use ``phone_dict/english``, else they are spelled letter
by letter (``spelling``): there is no network G2P.
"""

from __future__ import annotations

import contextlib
import functools
import io
import unicodedata
from collections.abc import Callable
from pathlib import Path

from .spelling import latin_base
from .tables import EMPTY, PhoneTable, shared_table

# IITM common-label-set label -> model character (labels not listed, such as a, k, n, stay as
# they are). From the synthesis issue; the same table upstream applies to parser output.
LABEL_TO_CHAR = {
    "aa": "A", "ae": "ऍ", "ag": "ऽ", "ai": "ऐ", "au": "औ", "axx": "अ", "ax": "ऑ",
    "bh": "B", "ch": "C", "dh": "ध", "dxhq": "T", "dxh": "ढ", "dxq": "D", "dx": "ड",
    "ee": "E", "ei": "ऐ", "eu": "உ", "gh": "घ", "gq": "G", "hq": "H", "ii": "I", "jh": "J",
    "khq": "K", "kh": "ख", "kq": "क", "ln": "ൾ", "lw": "ൽ", "lx": "ള", "mq": "M", "nd": "ऩ",
    "ng": "ङ", "nj": "ञ", "nk": "Y", "nn": "N", "nw": "ൺ", "nx": "ण", "oo": "O", "ou": "औ",
    "ph": "P", "rqw": "ॠ", "rq": "R", "rw": "ർ", "rx": "ऱ", "sh": "श", "sx": "ष", "txh": "ठ",
    "th": "थ", "tx": "ट", "uu": "U", "wv": "W", "zh": "Z",
}

# Devanagari letters with a nukta exist precomposed (U+0958-U+095F) and as letter + U+093C; the
# dictionaries hold both, so a word is looked up under either spelling.
_PRECOMPOSED_NUKTA = {unicodedata.normalize("NFD", chr(c)): chr(c) for c in range(0x0958, 0x0960)}


def labels_to_chars(labels: str) -> str:
    """Parser output (``"n a m a s t ee"``) to model characters (``"namastE"``)."""
    return "".join(LABEL_TO_CHAR.get(label, label) for label in labels.split())


_JOINERS = str.maketrans("", "", "\u200c\u200d")


def spellings(word: str):
    """The spellings to look a word up under: as given, NFC, precomposed nukta letters, and
    each of those without zero-width (non-)joiners."""
    nfc = unicodedata.normalize("NFC", word)
    composed = nfc
    for decomposed, precomposed in _PRECOMPOSED_NUKTA.items():
        composed = composed.replace(decomposed, precomposed)
    variants = (word, nfc, composed)
    yield from dict.fromkeys(variants + tuple(v.translate(_JOINERS) for v in variants))


def is_latin_word(word: str) -> bool:
    """True for a word written in Latin letters, accents allowed (an English word inside Indic
    text, ``café``)."""
    base = latin_base(word)
    return base.isascii() and any(ch.isalpha() for ch in base)


def look_up(get: Callable[[str], str | None], word: str, fold_case: bool) -> str | None:
    """``word``'s phones from ``get`` (a table's, or a parsed dictionary's): each of its
    ``spellings`` as written, then with ``fold_case`` the word case-folded."""
    for spelling in spellings(word):
        phones = get(spelling)
        if phones is not None:
            return phones
    return get(word.casefold()) if fold_case else None


class PhoneDictionary:
    """``phone_dict/<language>``: read on the first lookup, from its table in the cache where one
    is there (``tables``: keyed by the SHA-256 of the file, so an edited dictionary is parsed
    again), and shared by every voice that uses it. ``cache``: the cache root (None:
    ``fileio.cache_root()``)."""

    def __init__(self, path: Path, fold_case: bool = False, cache: Path | None = None):
        self.path = path
        self.fold_case = fold_case
        self.cache = cache
        self._table: PhoneTable | None = None

    @property
    def exists(self) -> bool:
        """True when something is there: a FIFO or directory in its place is an error when read,
        not a silently missing dictionary."""
        return self.path.exists()

    def lookup(self, word: str) -> str | None:
        return look_up(self._load().get, word, self.fold_case)

    def _load(self) -> PhoneTable:
        if self._table is None:
            try:
                stat = self.path.stat()
            except OSError:
                self._table = EMPTY
            else:
                self._table = shared_table(self.path.resolve(), stat.st_mtime_ns, stat.st_size, self.fold_case,
                                           self.cache)
        return self._table


# indic-unified-parser's ``SchwaDoubleConsonent`` tries tens of thousands of string replacements
# on every word (most of the parser's time; docs/frontend.md has the figures), and each one
# needs this mark of a consonant cluster in the word's syllabified form. Where it is absent (most words), none can apply and
# the function's result is the form without ``$``: ``_parser`` gives such words that result
# straight away; the others go through the library's function as before.
CLUSTER_MARK = "&euv&"


@functools.cache
def _parser():
    """The unified parser's ``wordparse`` (imported on first use: its import is slow), with the
    shortcut above."""
    from indic_unified_parser import uparser

    replace_all = uparser.SchwaDoubleConsonent

    @functools.wraps(replace_all)  # __wrapped__: the library's own, for the tests
    def schwa_double_consonant(phone: str) -> str:
        return replace_all(phone) if CLUSTER_MARK in phone else phone.replace("$", "")

    uparser.SchwaDoubleConsonent = schwa_double_consonant
    return uparser.wordparse


def parse_word(word: str) -> str | None:
    """Model characters for ``word`` from the unified parser, or None where it has no answer."""
    wordparse = _parser()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the parser prints on unknown scripts
            labels = wordparse(word, 0, 0, 1)
    except Exception:  # the parser raises IndexError and friends on text it cannot handle
        return None
    if not isinstance(labels, str):
        return None
    return labels_to_chars(labels) or None
