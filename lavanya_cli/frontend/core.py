"""The front-end a voice needs: one sentence in, exactly the acoustic model's input string out."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LavanyaError
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text
from ..modeltree.layout import VoiceSpec
from ..modeltree.paths import relative_path
from .cleaning import clean
from .kind import PHRASE_END, PHRASE_START, FrontendKind, detect_kind, token_list
from .numbers import NUMBER, MissingNumberWord, NumberTable
from .phones import PhoneDictionary, is_latin_word, parse_word

CHARMAP_NAME = "multilingualcharmap.json"
# Tokens ESPnet adds itself; never part of the text.
_SPECIAL_TOKENS = {"<blank>", "<unk>", "<space>", "<sos/eos>"}


@dataclass
class PreparedText:
    """What one sentence becomes.

    ``model_input``: the exact string given to the acoustic model. ``unpronounced``: words left
    out. ``incomplete``: words spoken without some of their letters (the voice has no token for
    them). ``problems``: one line per such word saying which of the two happened and why (and
    which resource file would have helped).
    """

    model_input: str
    unpronounced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)


class _Report:
    """Collects the words a sentence could not fully pronounce, each as what really happened."""

    def __init__(self) -> None:
        self.left_out: list[str] = []
        self.incomplete: list[str] = []
        self.problems: list[str] = []

    def not_pronounced(self, word: str, reason: str) -> None:
        if word not in self.left_out:
            self.left_out.append(word)
        self.problems.append(f"{word}: not pronounced: {reason}")

    def spoken_without(self, word: str, letters: list[str]) -> None:
        if word not in self.incomplete:
            self.incomplete.append(word)
        self.problems.append(f"{word}: spoken without {_listed(letters)}: not among the voice's tokens")

    @property
    def any(self) -> bool:
        return bool(self.problems)


class Frontend:
    """Text to model input for one voice. Resources load lazily, once, from the model root."""

    def __init__(
        self,
        language: str,
        gender: str,
        kind: FrontendKind,
        root: Path,
        tokens: list[str] | None = None,
        strict: bool = False,
        variant: str = "",
    ):
        self.language = language
        self.gender = gender
        self.kind = kind
        self.root = Path(root)
        self.strict = strict
        self.tokens = frozenset(tokens) - _SPECIAL_TOKENS if tokens else None
        # English words are looked up case-insensitively ("India", "india", "INDIA").
        self.dictionary = PhoneDictionary(self._dictionary_path(variant), fold_case=language == "english")
        self.english = (
            self.dictionary
            if language == "english"
            else PhoneDictionary(self.root / "phone_dict" / "english", fold_case=True)
        )
        self._numbers: NumberTable | None = None
        self._charmap: dict[str, str] | None = None
        self._cache: dict[str, tuple[str, list[str]]] = {}

    @classmethod
    def for_voice(cls, voice: VoiceSpec, config: dict[str, Any], strict: bool = False) -> "Frontend":
        """The front-end ``voice`` was trained with, decided from its ``config.yaml``."""
        return cls(
            language=voice.language,
            gender=voice.gender,
            kind=detect_kind(config, voice.model_dir),
            root=voice.root,
            tokens=token_list(config, voice.model_dir),
            strict=strict,
            variant=voice.variant,
        )

    # -- the pipeline -------------------------------------------------------------------

    def prepare(self, sentence: str) -> PreparedText:
        """One sentence to the model's input string. Raises LavanyaError when nothing in it can be
        spoken, and under ``strict`` when any word cannot be pronounced."""
        report = _Report()
        phrases = [self._phrase(words, report) for words in clean(sentence)]
        phrases = [phrase for phrase in phrases if phrase]
        if report.any and self.strict:
            raise LavanyaError("not every word can be spoken (strict): " + "; ".join(_first(report.problems)))
        if not phrases:
            shown = sentence.strip() if len(sentence.strip()) <= 60 else sentence.strip()[:60] + "…"
            detail = f" ({'; '.join(_first(report.problems))})" if report.problems else ""
            raise LavanyaError(f"nothing to say in {shown!r}{detail}")
        if self.kind is FrontendKind.PHRASES:
            phrases = [PHRASE_START + phrase + PHRASE_END for phrase in phrases]
        return PreparedText(" ".join(phrases), report.left_out, report.problems, report.incomplete)

    def _phrase(self, words: list[str], report: _Report) -> str:
        spoken = [piece for word in words for piece in self._word(word, report)]
        if self.kind is FrontendKind.CHARACTERS:
            phones = [self._in_tokens(piece, piece, report) for piece in spoken]
        else:
            phones = [self._phones(piece, report) for piece in spoken]
        joiner = "" if self.kind is FrontendKind.PHRASES else " "  # phones and characters: spaces
        return joiner.join(phone for phone in phones if phone)

    def _word(self, word: str, report: _Report) -> list[str]:
        """A word as words of the language: numbers spelled out, everything else unchanged."""
        if not NUMBER.match(word):
            return [word]
        table = self.numbers
        if table is None:
            report.not_pronounced(word, f"no number table {relative_path(self._numbers_path, self.root)}")
            return []
        try:
            # a table row may hold several words ("ninety six")
            return [part for spelled in table.spell(word) for part in spelled.split()]
        except MissingNumberWord as missing:
            report.not_pronounced(word, f"{relative_path(self._numbers_path, self.root)} has no row for {missing.key!r}")
            return []

    def _phones(self, word: str, report: _Report) -> str:
        """Model characters for one word ('' when nobody can pronounce it)."""
        if word not in self._cache:
            problems: list[str] = []
            phones = self._lookup(word, problems)
            self._cache[word] = (phones, problems)
        phones, problems = self._cache[word]
        for problem in problems:
            report.not_pronounced(word, problem)
        return self._in_tokens(word, phones, report) if phones else ""

    def _lookup(self, word: str, problems: list[str]) -> str:
        if is_latin_word(word):
            if not self.english.exists:
                problems.append(f"English word and no {relative_path(self.english.path, self.root)}")
                return ""
            phones = self.english.lookup(word)
            if phones is None:
                problems.append(f"not in {relative_path(self.english.path, self.root)} (no network G2P)")
            return phones or ""
        phones = self.dictionary.lookup(word) if self.dictionary.exists else None
        if phones is None:
            phones = parse_word(word)
        if phones is None:
            where = relative_path(self.dictionary.path, self.root)
            problems.append(f"not in {where}, and the unified parser has no answer")
        return phones or ""

    def _in_tokens(self, word: str, text: str, report: _Report) -> str:
        """``text`` in the voice's tokens: a character outside them becomes its entry in the
        multilingual character map, or its base letter (``ऩ`` -> ``न``, Unicode decomposition).
        Characters with neither are dropped and the word is reported as spoken without them;
        a word left with no character at all is reported as not pronounced."""
        if self.tokens is None or all(ch in self.tokens for ch in text):
            return text
        kept, unknown = [], []
        for ch in text:
            replacement = self._token_for(ch)
            if replacement is None:
                unknown.append(ch)
            else:
                kept.append(replacement)
        if unknown and not kept:
            report.not_pronounced(word, f"none of its letters is among the voice's tokens ({_listed(unknown)})")
        elif unknown:
            report.spoken_without(word, unknown)
        return "".join(kept)

    def _token_for(self, ch: str) -> str | None:
        base = unicodedata.normalize("NFD", ch)[0]
        charmap = self.charmap
        for candidate in (ch, charmap.get(ch), base, charmap.get(base)):
            if candidate and all(c in self.tokens for c in candidate):
                return candidate
        return None

    # -- resources ----------------------------------------------------------------------

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
            self._numbers = NumberTable.load(self._numbers_path)
        return self._numbers

    @property
    def charmap(self) -> dict[str, str]:
        """This voice's entry of ``multilingualcharmap.json`` (empty when absent)."""
        if self._charmap is None:
            path = self.root / CHARMAP_NAME
            self._charmap = {}
            if path.exists():
                try:
                    maps = json.loads(read_regular_text(path, RESOURCE_MAX_BYTES, "the character map"))
                except OSError as exc:
                    raise LavanyaError(f"{path}: cannot read the character map ({exc.strerror or exc})") from None
                except (ValueError, RecursionError) as exc:
                    raise LavanyaError(f"{path}: the character map is not JSON ({exc})") from None
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
