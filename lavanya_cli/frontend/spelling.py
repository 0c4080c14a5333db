"""A Latin-script word that no English dictionary knows, spelled letter by letter.

Every voice that takes phones (all but the Urdu and Punjabi character voices) was trained on the
same common-label-set characters, so the English letter names can be written once in them, as
Indian speakers say them: B is ``bI``, H is ``Ec``, W is ``डabalyU``. Not every voice has every
character (no ``f`` in the Bengali or Telugu voices, no ``ड`` in one Manipuri voice), so a letter
has alternatives in order of preference; the front-end takes the first one the voice can say
(``Frontend._letter_name``). An acronym (``ATM``, ``OTP``) is spoken rightly this way; an ordinary
word missing from the dictionary is at least heard rather than dropped, and reported as spelled.
"""

from __future__ import annotations

import unicodedata

# Longer words are not spelled (left out and reported): 40 letter names are no word a listener
# follows, and the acoustic model's input stays short.
SPELL_MAX_LETTERS = 20

# Letter -> its name in model characters, best first. Vowels: E = ए, I = ई, U = ऊ, A = आ, o/O = ओ
# (O is the long one in the Dravidian voices); consonants: ट/ड retroflex as Indian English says
# t and d, c = च, w = व, P = फ (ph, where a voice has no f), j = ज (where it has no z).
LETTER_NAMES: dict[str, tuple[str, ...]] = {
    "a": ("E",),
    "b": ("bI",),
    "c": ("sI",),
    "d": ("डI", "dI"),
    "e": ("I",),
    "f": ("Ef", "EP"),
    "g": ("jI",),
    "h": ("Ec",),
    "i": ("AI",),
    "j": ("jE",),
    "k": ("kE",),
    "l": ("El",),
    "m": ("Em",),
    "n": ("En",),
    "o": ("O", "o"),
    "p": ("pI",),
    "q": ("kyU",),
    "r": ("Ar",),
    "s": ("Es",),
    "t": ("टI", "tI"),
    "u": ("yU",),
    "v": ("vI", "wI", "BI"),
    "w": ("डabalyU", "dabalyU"),
    "x": ("Eks",),
    "y": ("wAI", "oyAI"),
    "z": ("zEड", "jEड", "zEd", "jEd"),
}


def latin_base(word: str) -> str:
    """``word`` without accents (``café`` -> ``cafe``); other scripts are left as they are."""
    decomposed = unicodedata.normalize("NFD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def latin_letters(word: str) -> list[str]:
    """The letters of a Latin-script word, lower case and without accents (digits, ``_`` and
    other marks are not spelled)."""
    return [ch for ch in latin_base(word).lower() if ch in LETTER_NAMES]
