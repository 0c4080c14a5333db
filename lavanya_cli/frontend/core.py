"""The front-end a voice needs: one sentence in, exactly the acoustic model's input string out."""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LavanyaError, one_line
from ..fileio import RESOURCE_MAX_BYTES, read_json
from ..modeltree.config import token_list
from ..modeltree.layout import VoiceSpec
from ..modeltree.paths import relative_path, require_inside
from .cleaning import clean
from .kind import PHRASE_END, PHRASE_START, FrontendKind, detect_kind
from .numbers import (
    NUMBER,
    MissingNumberWord,
    NumberTable,
    is_digit_cue,
    keeps_digit_cue,
)
from .phones import PhoneDictionary, is_latin_word, parse_word, spellings
from .spelling import LETTER_NAMES, SPELL_MAX_LETTERS, latin_letters

CHARMAP_NAME = "multilingualcharmap.json"
# Tokens ESPnet adds itself; never part of the text.
_SPECIAL_TOKENS = {"<blank>", "<unk>", "<space>", "<sos/eos>"}
# Words whose pronunciation one voice remembers, least recently used forgotten first: a long-running
# server sees an endless variety of words; 10,000 entries cover the common ones in little memory
# (docs/frontend.md).
WORD_CACHE_SIZE = 10_000


@dataclass
class PreparedText:
    """What one sentence becomes.

    ``model_input``: the exact string given to the acoustic model; empty when nothing in the
    sentence can be spoken. ``unpronounced``: words left out. ``incomplete``: words spoken
    without some of their letters (the voice has no token for them). ``spelled``: Latin-script
    words no dictionary knows, spoken letter by letter. ``problems``: one line per such word
    saying which of these happened and why (and which resource file would have helped).
    """

    model_input: str
    unpronounced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    spelled: list[str] = field(default_factory=list)

    @property
    def spoken(self) -> bool:
        """False for a sentence with nothing speakable (it is left out of the audio)."""
        return bool(self.model_input)


@dataclass(frozen=True)
class _Pronunciation:
    """How one word is said: ``pieces`` of model characters (one, or one per letter when
    ``spelled`` says why it is spelled), or ``problem`` saying why it cannot be said."""

    pieces: tuple[str, ...] = ()
    problem: str = ""
    spelled: str = ""


class _Report:
    """Collects the words a sentence could not fully pronounce, each as what really happened."""

    def __init__(self) -> None:
        self.left_out: list[str] = []
        self.incomplete: list[str] = []
        self.spelled: list[str] = []
        self.problems: list[str] = []

    def not_pronounced(self, word: str, reason: str) -> None:
        if word not in self.left_out:
            self.left_out.append(word)
        self.problems.append(f"{word}: not pronounced: {reason}")

    def spelled_out(self, word: str, reason: str) -> None:
        if word not in self.spelled:
            self.spelled.append(word)
        self.problems.append(f"{word}: spelled letter by letter: {reason}")

    def spoken_without(self, word: str, letters: list[str]) -> None:
        if word not in self.incomplete:
            self.incomplete.append(word)
        self.problems.append(f"{word}: spoken without {_listed(letters)}: not among the voice's tokens")

    @property
    def any(self) -> bool:
        return bool(self.problems)


class Frontend:
    """Text to model input for one voice. Resources load lazily, once, from the model root;
    ``cache`` is where the phone dictionaries' tables are kept (None: ``fileio.cache_root()``)."""

    def __init__(
        self,
        language: str,
        gender: str,
        kind: FrontendKind,
        root: Path,
        tokens: list[str] | None = None,
        strict: bool = False,
        variant: str = "",
        cache: Path | None = None,
    ):
        self.language = language
        self.gender = gender
        self.kind = kind
        self.root = Path(root)
        self.strict = strict
        self.tokens = frozenset(tokens) - _SPECIAL_TOKENS if tokens else None
        # English words are looked up case-insensitively ("India", "india", "INDIA").
        self.dictionary = PhoneDictionary(self._inside(self._dictionary_path(variant)),
                                          fold_case=language == "english", cache=cache)
        self.english = (
            self.dictionary
            if language == "english"
            else PhoneDictionary(self._inside(self.root / "phone_dict" / "english"), fold_case=True, cache=cache)
        )
        self._numbers: NumberTable | None = None
        self._charmap: dict[str, str] | None = None
        # per instance (a cache on the class would keep every Frontend alive); thread-safe
        self._pronounce = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._lookup)

    @classmethod
    def for_voice(cls, voice: VoiceSpec, config: dict[str, Any], strict: bool = False,
                  cache: Path | None = None) -> "Frontend":
        """The front-end ``voice`` was trained with, decided from its ``config.yaml``. ``cache``:
        where the phone dictionaries' tables are kept (None: ``fileio.cache_root()``)."""
        return cls(
            language=voice.language,
            gender=voice.gender,
            kind=detect_kind(config, voice.model_dir),
            root=voice.root,
            tokens=token_list(config, voice.model_dir),
            strict=strict,
            variant=voice.variant,
            cache=cache,
        )

    # -- the pipeline -------------------------------------------------------------------

    def prepare(self, sentence: str) -> PreparedText:
        """One sentence to the model's input string; words that cannot be said are left out and
        reported, so the result may be empty (``spoken`` is False). Raises LavanyaError when the
        sentence has no words at all, and under ``strict`` when any word is not said as written
        (left out, spelled or incomplete)."""
        report = _Report()
        phrases = [self._phrase(words, report) for words in clean(sentence)]
        if not phrases:
            shown = sentence.strip() if len(sentence.strip()) <= 60 else sentence.strip()[:60] + "…"
            raise LavanyaError(f"nothing to say in {shown!r}: no words, only punctuation")
        if report.any and self.strict:
            raise LavanyaError("not every word can be spoken as written (strict): "
                               + "; ".join(_first(report.problems)))
        phrases = [phrase for phrase in phrases if phrase]
        if self.kind is FrontendKind.PHRASES:
            phrases = [PHRASE_START + phrase + PHRASE_END for phrase in phrases]
        return PreparedText(" ".join(phrases), report.left_out, report.problems, report.incomplete,
                            report.spelled)

    def prepare_all(self, sentences: Iterable[str]) -> list[PreparedText]:
        """Every sentence of a text, prepared. A sentence with nothing speakable comes back empty,
        its words reported; only a text in which no sentence at all can be spoken is an error."""
        prepared = [self.prepare(sentence) for sentence in sentences]
        if not any(text.spoken for text in prepared):
            problems = [problem for text in prepared for problem in text.problems]
            detail = f" ({'; '.join(_first(problems))})" if problems else ""
            raise LavanyaError(f"nothing to say: no word of the text can be spoken{detail}")
        return prepared

    @property
    def _joiner(self) -> str:
        """Between the words of a phrase: nothing for phrase voices, a space for the others."""
        return "" if self.kind is FrontendKind.PHRASES else " "

    def _phrase(self, words: list[str], report: _Report) -> str:
        spoken: list[str] = []
        after_cue = False  # the last word before this run of numbers is a cue ("फ़ोन नंबर 98765 43210")
        for word in words:
            if NUMBER.match(word):
                spoken += self._number(word, after_cue, report)
            else:
                after_cue = is_digit_cue(spellings(word)) or (after_cue and keeps_digit_cue(word))
                spoken.append(word)
        if self.kind is FrontendKind.CHARACTERS:
            phones = ["".join(self._in_tokens(piece, (piece,), report)) for piece in spoken]
        else:
            phones = [self._phones(piece, report) for piece in spoken]
        return self._joiner.join(phone for phone in phones if phone)

    def _number(self, word: str, after_cue: bool, report: _Report) -> list[str]:
        """A number as words of the language (a table row may hold several: "ninety six")."""
        table = self.numbers
        if table is None:
            report.not_pronounced(word, f"no number table {relative_path(self._numbers_path, self.root)}")
            return []
        try:
            return [part for spelled in table.spell(word, after_cue) for part in spelled.split()]
        except MissingNumberWord as missing:
            report.not_pronounced(word, f"{relative_path(self._numbers_path, self.root)} has no row for {missing.key!r}")
            return []

    def _phones(self, word: str, report: _Report) -> str:
        """Model characters for one word ('' when nobody can pronounce it)."""
        pronunciation = self._pronounce(word)
        if pronunciation.problem:
            report.not_pronounced(word, pronunciation.problem)
            return ""
        pieces = [piece for piece in self._in_tokens(word, pronunciation.pieces, report) if piece]
        if pronunciation.spelled and pieces:
            report.spelled_out(word, pronunciation.spelled)
        return self._joiner.join(pieces)

    def _lookup(self, word: str) -> _Pronunciation:
        """How ``word`` is said, from the resources alone (cached per word: ``_pronounce``)."""
        if is_latin_word(word):
            english = relative_path(self.english.path, self.root)
            phones = self.english.lookup(word) if self.english.exists else None
            if phones:
                return _Pronunciation((phones,))
            why = f"not in {english}" if self.english.exists else f"no {english}"
            letters = latin_letters(word)
            if len(letters) > SPELL_MAX_LETTERS:
                return _Pronunciation(problem=f"{why}, and too long to spell ({len(letters)} letters, "
                                              f"at most {SPELL_MAX_LETTERS})")
            return _Pronunciation(tuple(self._letter_name(letter) for letter in letters), spelled=why)
        phones = self.dictionary.lookup(word) if self.dictionary.exists else None
        if phones is None:
            phones = parse_word(word)
        if not phones:
            where = relative_path(self.dictionary.path, self.root)
            return _Pronunciation(problem=f"not in {where}, and the unified parser has no answer")
        return _Pronunciation((phones,))

    def _letter_name(self, letter: str) -> str:
        """The first of the letter's names (``spelling.LETTER_NAMES``) made only of the voice's
        tokens, else the first one the character map or base letters can carry, else the first."""
        names = LETTER_NAMES[letter]
        if self.tokens is None:
            return names[0]
        for fits in (lambda ch: ch in self.tokens, lambda ch: self._token_for(ch) is not None):
            for name in names:
                if all(fits(ch) for ch in name):
                    return name
        return names[0]

    def _in_tokens(self, word: str, pieces: tuple[str, ...], report: _Report) -> list[str]:
        """``pieces`` (of one word) in the voice's tokens: a character outside them becomes its
        entry in the multilingual character map, or its base letter (``ऩ`` -> ``न``, Unicode
        decomposition). Characters with neither are dropped and the word is reported as spoken
        without them; a word left with no character at all is reported as not pronounced."""
        if self.tokens is None or all(ch in self.tokens for piece in pieces for ch in piece):
            return list(pieces)
        kept: list[str] = []
        unknown: list[str] = []
        for piece in pieces:
            mapped = []
            for ch in piece:
                replacement = self._token_for(ch)
                if replacement is None:
                    unknown.append(ch)
                else:
                    mapped.append(replacement)
            kept.append("".join(mapped))
        if unknown and not any(kept):
            report.not_pronounced(word, f"none of its letters is among the voice's tokens ({_listed(unknown)})")
        elif unknown:
            report.spoken_without(word, unknown)
        return kept

    def _token_for(self, ch: str) -> str | None:
        base = unicodedata.normalize("NFD", ch)[0]
        charmap = self.charmap
        for candidate in (ch, charmap.get(ch), base, charmap.get(base)):
            if candidate and all(c in self.tokens for c in candidate):
                return candidate
        return None

    # -- resources ----------------------------------------------------------------------

    def _inside(self, path: Path) -> Path:
        """A resource of the model root, never one a link outside it leads to."""
        return require_inside(self.root, path)

    def _dictionary_path(self, variant: str) -> Path:
        """``phone_dict/<language>``, or the variant's own one where the tree has it (New-Models
        names a voice's dictionary after its directory: ``phone_dict/hindi_latest``)."""
        plain = self.root / "phone_dict" / self.language
        if variant:
            own = plain.with_name(f"{self.language}_{variant.split('-')[0]}")
            if own.exists():
                return own
        return plain

    @property
    def _numbers_path(self) -> Path:
        return self.root / "numToText" / f"{self.language}.csv"

    @property
    def numbers(self) -> NumberTable | None:
        if self._numbers is None and self._numbers_path.exists():
            self._numbers = NumberTable.load(self._inside(self._numbers_path))
        return self._numbers

    @property
    def charmap(self) -> dict[str, str]:
        """This voice's entry of ``multilingualcharmap.json`` (empty when absent)."""
        if self._charmap is None:
            path = self._inside(self.root / CHARMAP_NAME)
            self._charmap = {}
            if path.exists():
                try:
                    maps = read_json(path, RESOURCE_MAX_BYTES, "the character map",
                                     "restore multilingualcharmap.json from the model repository")
                except OSError as exc:
                    raise LavanyaError(f"{path}: cannot read the character map ({one_line(exc)})") from None
                entry = maps.get(f"{self.language}_{self.gender}") if isinstance(maps, dict) else None
                if isinstance(entry, dict):
                    self._charmap = {str(k): str(v) for k, v in entry.items()}
        return self._charmap


def _first(problems: list[str], count: int = 3) -> list[str]:
    """The first few problems for a one-line message, and how many more there are."""
    more = len(problems) - count
    return problems[:count] + ([f"and {more} more"] if more > 0 else [])


def _listed(characters: list[str]) -> str:
    """Characters as a report names them: ``W (U+0057) ऽ (U+093D)``."""
    return " ".join(f"{ch} (U+{ord(ch):04X})" for ch in dict.fromkeys(characters))
