"""Step 2: numbers become words of the voice's language, from ``numToText/<language>.csv``.

The table has rows ``digits,word`` for 0-100, 1000, 100000 (lakh) and 10000000 (crore), and a
row ``.`` for the decimal point. Amounts are composed in the Indian system: ``12,34,567`` is
twelve lakh, thirty-four thousand, five hundred and sixty-seven (without "and").

Digit strings that are no amount are read digit by digit: ten or more digits without group
commas (``9876543210``), a leading zero (``007``), the digits after the decimal point, and a
number of three or more digits right after a word such as "number", "phone", "PIN", नंबर, फ़ोन,
নম্বর, எண் (``DIGIT_CUES``; "is" or है may stand between them). Group commas always mean an amount (``1,25,00,00,000``).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from ..errors import LavanyaError
from ..fileio import RESOURCE_MAX_BYTES, read_regular_text

# A number as the cleaner leaves it: digits, or digits in groups (1,25,000 or 1,000,000), then an
# optional decimal part.
NUMBER = re.compile(r"^(?:\d{1,3}(?:,\d{2,3})*,\d{3}|\d+)(?:\.\d+)?$")
# Place values of the Indian system, largest first: crore, lakh, thousand, hundred.
_PLACES = (10_000_000, 100_000, 1000, 100)
# Without group commas, an amount has at most 9 digits (99,99,99,999); longer runs are phone
# numbers, account numbers, IDs. With group commas, amounts up to 15 digits are composed.
PLAIN_AMOUNT_MAX_DIGITS = 9
GROUPED_AMOUNT_MAX_DIGITS = 15
# After a cue word, numbers of at least this many digits are read digit by digit ("flat number
# 42" stays forty-two; "PIN 600036" does not become six lakh thirty-six).
CUED_MIN_DIGITS = 3
# Words after which a number is an identifier, not an amount: "number", "phone", "mobile", "PIN",
# "code", "OTP" and their kin in the languages of the voices (as written in running text, with
# and without nukta or chillu forms). Compared case-folded, in NFC. Words that also mean a count
# (संख्या, সংখ্যা: "the number of students is 500") are left out on purpose.
DIGIT_CUES = frozenset(unicodedata.normalize("NFC", word).casefold() for word in """
    number numbers phone telephone tel mobile cell whatsapp contact helpline fax dial call
    pin pincode zip otp code id aadhaar aadhar pnr ext extension
    नंबर नम्बर फ़ोन फोन टेलीफ़ोन टेलीफोन मोबाइल मोबाईल पिन पिनकोड कोड ओटीपी क्रमांक आधार दूरभाष
    हेल्पलाइन डायल कॉल
    নম্বর নম্বৰ নং ফোন মোবাইল পিন কোড
    નંબર ફોન મોબાઇલ મોબાઈલ પિન કોડ
    ਨੰਬਰ ਫ਼ੋਨ ਫੋਨ ਮੋਬਾਈਲ ਪਿੰਨ ਕੋਡ
    ନମ୍ବର ଫୋନ ମୋବାଇଲ ପିନ କୋଡ
    எண் நம்பர் போன் ஃபோன் தொலைபேசி கைபேசி மொபைல் பின் கோட்
    నంబర్ నంబరు ఫోన్ మొబైల్ పిన్ కోడ్
    ನಂಬರ್ ಫೋನ್ ಮೊಬೈಲ್ ಪಿನ್ ಕೋಡ್
    നമ്പർ നമ്പര് ഫോൺ ഫോണ് മൊബൈൽ പിൻ പിന് കോഡ്
    نمبر فون موبائل کوڈ پن
""".split())
# Words that may stand between a cue and its number without ending the cue ("my PIN is 600036",
# "मेरा नंबर है 98765").
DIGIT_CUE_LINKS = frozenset("is was are at है हैं था थी".split())


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

    def spell(self, number: str, after_cue: bool = False) -> list[str]:
        """Words for ``number`` (ASCII digits, optional group commas and decimal part): an amount,
        or digit by digit where it is none (see the module notes). ``after_cue``: the word before
        it is one of ``DIGIT_CUES``."""
        integer, _, fraction = number.partition(".")
        if reads_digit_by_digit(integer, after_cue):
            words = self.digits(integer.replace(",", ""))
        else:
            words = self.integer(int(integer.replace(",", "")))
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


def reads_digit_by_digit(integer: str, after_cue: bool = False) -> bool:
    """True when the integer part of a number (as written, group commas kept) is no amount."""
    if "," in integer:
        return len(integer.replace(",", "")) > GROUPED_AMOUNT_MAX_DIGITS
    return (len(integer) > PLAIN_AMOUNT_MAX_DIGITS or (len(integer) > 1 and integer.startswith("0"))
            or (after_cue and len(integer) >= CUED_MIN_DIGITS))


def is_digit_cue(spellings: Iterable[str]) -> bool:
    """True when one of a word's ``spellings`` (``phones.spellings``) is a cue for digits."""
    return any(unicodedata.normalize("NFC", spelling).casefold() in DIGIT_CUES for spelling in spellings)


def keeps_digit_cue(word: str) -> bool:
    """True for a word that may stand between a cue and its number (``DIGIT_CUE_LINKS``)."""
    return unicodedata.normalize("NFC", word).casefold() in DIGIT_CUE_LINKS
