"""Step 2: numbers become words of the voice's language, from ``numToText/<language>.csv``.

The table has rows ``digits,word`` for 0-100, 1000, 100000 (lakh) and 10000000 (crore), and a
row ``.`` for the decimal point. Larger numbers are composed in the Indian system:
``12,34,567`` is twelve lakh, thirty-four thousand, five hundred and sixty-seven (without "and").
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ..errors import LavanyaError
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text

NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
# Place values of the Indian system, largest first: crore, lakh, thousand, hundred.
_PLACES = (10_000_000, 100_000, 1000, 100)
# Longer digit strings (phone numbers, IDs) are read digit by digit.
_MAX_COMPOSED_DIGITS = 15


class MissingNumberWord(LookupError):
    """The table lacks a row that a number needs; ``key`` names the row."""

    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


class NumberTable:
    """One language's ``numToText`` table."""

    def __init__(self, words: dict[str, str], source: Path | None = None):
        self.words = words
        self.source = source

    @classmethod
    def load(cls, path: Path) -> "NumberTable":
        """Read ``digits,word`` rows; rows without a word are ignored."""
        words: dict[str, str] = {}
        try:
            text = read_regular_text(path, RESOURCE_MAX_BYTES, "the number table", encoding="utf-8-sig")
            for row in csv.reader(io.StringIO(text, newline="")):
                if len(row) >= 2 and row[0].strip() and row[1].strip():
                    words[row[0].strip()] = row[1].strip()
        except (OSError, csv.Error) as exc:
            raise LavanyaError(f"{path}: cannot read the number table ({exc})") from None
        return cls(words, path)

    def word(self, key: str) -> str:
        try:
            return self.words[key]
        except KeyError:
            raise MissingNumberWord(key) from None

    def spell(self, number: str) -> list[str]:
        """Words for ``number`` (ASCII digits, optional decimal part)."""
        integer, _, fraction = number.partition(".")
        if len(integer) > _MAX_COMPOSED_DIGITS or (len(integer) > 1 and integer.startswith("0")):
            words = self.digits(integer)
        else:
            words = self.integer(int(integer))
        if fraction:
            words += [self.word(".")] + self.digits(fraction)
        return words

    def digits(self, digits: str) -> list[str]:
        return [self.word(digit) for digit in digits]

    def integer(self, n: int) -> list[str]:
        """Words for a non-negative integer, composed crore/lakh/thousand/hundred."""
        if n < 100:
            return [self.word(str(n))]
        for place in _PLACES:
            if n >= place:
                count, rest = divmod(n, place)
                words = self.integer(count) + [self.word(str(place))]
                return words + self.integer(rest) if rest else words
        raise AssertionError("unreachable: n >= 100 always meets a place value")
