"""Write the bundled tree's small English lexicon, ``phone_dict/english``.

Common English words (the ones Hindi text borrows most: greetings, time, phones and money, the
office, the web), each spelled here in Devanagari the way Hindi writes it (``phone`` फ़ोन,
``please`` प्लीज़), then turned into the hindi voice's characters by the same unified parser that
serves Hindi words (``फ़ोन`` -> ``fon``). The list was written for this project. Words not listed
are spelled letter by letter by the front-end (``lavanya_cli.frontend.spelling``).

    python scripts/english_lexicon.py          # rewrites the file
    python scripts/english_lexicon.py --check  # exit 1 if the file differs from the list
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lavanya_cli.frontend.phones import parse_word  # noqa: E402
from lavanya_cli.modeltree.layout import BUNDLED_ROOT  # noqa: E402

LEXICON = BUNDLED_ROOT / "phone_dict" / "english"

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
"""


def entries() -> dict[str, str]:
    """English word -> model characters, from ``WORDS`` through the unified parser."""
    lexicon: dict[str, str] = {}
    for line in WORDS.strip().splitlines():
        word, devanagari = line.split()
        phones = parse_word(devanagari)
        if not phones:
            raise SystemExit(f"the parser has no answer for {devanagari} ({word})")
        if lexicon.setdefault(word, phones) != phones:
            raise SystemExit(f"{word} is listed twice with different spellings")
    return lexicon


def text() -> str:
    return "".join(f"{word} {phones}\n" for word, phones in sorted(entries().items()))


def main(argv: list[str]) -> int:
    wanted = text()
    if "--check" in argv:
        current = LEXICON.read_text(encoding="utf-8") if LEXICON.is_file() else ""
        if current != wanted:
            print(f"{LEXICON} differs from the list here; run python scripts/english_lexicon.py")
            return 1
        return 0
    LEXICON.parent.mkdir(exist_ok=True)
    LEXICON.write_text(wanted, encoding="utf-8")
    print(f"{LEXICON}: {wanted.count(chr(10))} words")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
