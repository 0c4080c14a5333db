"""Front-end steps that need no model tree: cleaning, numbers, labels, segmentation, tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.frontend import Silence, Speech, segment_text
from lavanya_cli.frontend.cleaning import clean
from lavanya_cli.frontend.numbers import MissingNumberWord, NumberTable, is_digit_cue
from lavanya_cli.frontend.phones import PhoneDictionary, is_latin_word, labels_to_chars, parse_word, spellings
from lavanya_cli.frontend.spelling import LETTER_NAMES, latin_letters
from lavanya_cli.modeltree.layout import BUNDLED_ROOT

SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs"
BUNDLED_HINDI = BUNDLED_ROOT / "numToText" / "hindi.csv"


# -- cleaning ----------------------------------------------------------------------------


def test_phrase_marks_and_line_breaks_end_phrases():
    assert clean("क, ख. ग; घ। ङ! च\nछ\r\nज") == [["क"], ["ख"], ["ग"], ["घ"], ["ङ"], ["च"], ["छ"], ["ज"]]


def test_dropped_marks_vanish_and_dashes_become_spaces():
    assert clean('क्या? (हाँ) "ठीक" |है| & ‘यह’ a/b it\'s नई-दिल्ली – अब: ठीक') == [
        ["क्या", "हाँ", "ठीक", "है", "यह", "ab", "its", "नई", "दिल्ली", "अब", "ठीक"]
    ]


def test_double_danda_ends_a_phrase_like_danda():
    assert clean("राम॥ श्याम। गीता") == [["राम"], ["श्याम"], ["गीता"]]


def test_spaces_collapse():
    assert clean("  एक    दो \t तीन  ") == [["एक", "दो", "तीन"]]


def test_numbers_keep_decimal_point_and_group_commas():
    # the commas stay: they tell the numbers step that 1,25,000 is an amount
    assert clean("दाम 3.5 है, कुल 1,25,000 और 2,000,000.") == [
        ["दाम", "3.5", "है"], ["कुल", "1,25,000", "और", "2,000,000"]
    ]


def test_indic_digits_become_ascii_and_split_from_letters():
    assert clean("सन २०२४में 5kg") == [["सन", "2024", "में", "5", "kg"]]


# -- numbers -----------------------------------------------------------------------------

# A small table typed for the tests: only the rows the numbers below need.
TABLE = NumberTable({
    "0": "zero", "1": "one", "2": "two", "5": "five", "7": "seven", "9": "nine", "12": "twelve",
    "25": "twentyfive", "34": "thirtyfour", "67": "sixtyseven", "99": "ninetynine",
    "100": "hundred", "1000": "thousand", "100000": "lakh", "10000000": "crore", ".": "point",
})


@pytest.mark.parametrize("number, words", [
    ("7", "seven"),
    ("100", "one hundred"),
    ("205", "two hundred five"),
    ("1000", "one thousand"),
    ("125000", "one lakh twentyfive thousand"),
    ("1234567", "twelve lakh thirtyfour thousand five hundred sixtyseven"),
    ("10000000", "one crore"),
    ("12500000", "one crore twentyfive lakh"),
    ("992500000", "ninetynine crore twentyfive lakh"),  # nine digits: still an amount
    ("9,99,00,00,000", "nine hundred ninetynine crore"),
    ("1,25,000", "one lakh twentyfive thousand"),
    ("1,200,000", "twelve lakh"),
    ("2.5", "two point five"),
    ("0.25", "zero point two five"),
    ("007", "zero zero seven"),
])
def test_indian_system_composition(number, words):
    assert TABLE.spell(number) == words.split()


def test_missing_row_names_the_row():
    with pytest.raises(MissingNumberWord) as missing:
        TABLE.spell("3")
    assert missing.value.key == "3"


def test_table_file_reads_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(".,बिंदु\n1,एक\n100,सौ\n1000,हज़ार\n\nbroken-row\n", encoding="utf-8")
    table = NumberTable.load(path)
    assert table.spell("1100") == ["एक", "हज़ार", "एक", "सौ"]
    assert table.spell("1.1") == ["एक", "बिंदु", "एक"]


def test_bundled_hindi_table_is_complete():
    table = NumberTable.load(BUNDLED_HINDI)
    expected_keys = {str(n) for n in range(101)} | {"1000", "100000", "10000000", "."}
    assert set(table.words) == expected_keys
    assert table.spell("1,00,000".replace(",", "")) == ["एक", "लाख"]
    assert table.spell("21.5") == ["इक्कीस", "दशमलव", "पाँच"]
    assert table.spell("3500000") == ["पैंतीस", "लाख"]


@pytest.mark.skipif(not (SHARED / "main" / "numToText" / "hindi.csv").is_file(), reason="no ../shared")
def test_bundled_hindi_table_agrees_with_upstream_mostly():
    """Sanity check only: the project's table was typed independently; a handful of spelling
    variants (छह/छः, अठारह/अट्ठारह, ...) are expected, wholesale differences are not."""
    ours = NumberTable.load(BUNDLED_HINDI).words
    upstream = NumberTable.load(SHARED / "main" / "numToText" / "hindi.csv").words
    assert set(ours) == set(upstream)
    differing = [key for key in ours if ours[key] != upstream[key]]
    assert len(differing) <= 12, differing


# -- phone labels ----------------------------------------------------------------------


def test_labels_map_to_one_character_each():
    # the example, mapped by hand: aa->A, ee->E, the rest unchanged
    assert labels_to_chars("n a m a s t ee ") == "namastE"
    assert labels_to_chars("k sx a m aa") == "kषamA"
    assert labels_to_chars("dxhq dxh dxq dx rqw rq") == "TढDडॠR"


def test_dictionary_finds_a_word_under_either_nukta_spelling(tmp_path):
    path = tmp_path / "hindi"
    # the file spells ज़रूर with the precomposed letter U+095B, ज़्यादा with ज + nukta U+093C
    path.write_text("\u095bरूर zarUr\nज\u093c्यादा zyAdA\n", encoding="utf-8")
    dictionary = PhoneDictionary(path)
    assert dictionary.lookup("ज\u093cरूर") == "zarUr"
    assert dictionary.lookup("\u095b्यादा") == "zyAdA"
    assert dictionary.lookup("ज\u093c्\u200dयादा") == "zyAdA"  # with a zero-width joiner
    assert dictionary.lookup("जरूर") is None  # without the nukta it is another word


def test_unified_parser_serves_a_hindi_word_offline():
    # आप = aa p -> "Ap"; कैसे = k ei s ee -> "kऐsE"
    assert parse_word("आप") == "Ap"
    assert parse_word("कैसे") == "kऐsE"


def _parser_words() -> list[str]:
    """Words for the parser: the bench's Hindi sentences, and where the upstream trees are
    here, a spread of Hindi, Tamil and Bengali dictionary words."""
    from lavanya_cli.bench.measure import DEFAULT_SENTENCES

    words = " ".join(DEFAULT_SENTENCES).replace("।", "").split()
    for language in ("hindi", "tamil", "bengali"):
        dictionary = SHARED / "main" / "phone_dict" / language
        if dictionary.is_file():
            lines = dictionary.read_text(encoding="utf-8").splitlines()
            words += [line.split(" ", 1)[0] for line in lines[:: max(1, len(lines) // 60)]]
    return words


@pytest.mark.slow  # parses a long word list twice, with and without the shortcut
def test_parser_shortcut_gives_the_librarys_own_answers(monkeypatch):
    """``phones._parser`` skips SchwaDoubleConsonent's loop for words without a cluster mark:
    every word must come out as the library's unchanged function makes it."""
    from indic_unified_parser import uparser

    from lavanya_cli.frontend.phones import CLUSTER_MARK

    parse_word("आप")  # installs the shortcut
    shortcut = uparser.SchwaDoubleConsonent
    full = shortcut.__wrapped__
    assert shortcut is not full
    for form in ("&k&a$&m&a&l&", "&s&euv&k&uu&l&", "&euv&s&t&a$&"):  # with and without the mark, with "$"
        assert shortcut(form) == full(form)
    forms = []
    monkeypatch.setattr(uparser, "SchwaDoubleConsonent", lambda phone: forms.append(phone) or shortcut(phone))
    words = _parser_words()
    fast = [parse_word(word) for word in words]
    monkeypatch.setattr(uparser, "SchwaDoubleConsonent", full)
    assert [parse_word(word) for word in words] == fast
    with_mark = sum(CLUSTER_MARK in form for form in forms)
    assert 0 < with_mark < len(forms)  # both ways through the shortcut were taken


def test_unified_parser_declines_latin_and_empty_words():
    assert parse_word("hello") is None
    assert parse_word("") is None


# -- segmentation and tags ---------------------------------------------------------------


def test_sentences_split_at_marks_and_line_breaks_not_decimals():
    items = segment_text("पहला वाक्य। दाम 3.5 है? हाँ! ठीक है.\nअंतिम पंक्ति")
    assert items == [
        Speech("पहला वाक्य।"), Speech("दाम 3.5 है?"), Speech("हाँ!"), Speech("ठीक है."),
        Speech("अंतिम पंक्ति"),
    ]


def test_alpha_applies_from_the_tag_on_and_silences_are_items():
    items = segment_text("एक <alpha=1.5> दो। तीन <sil=500ms> चार <sil=2s><alpha=1>पाँच")
    assert items == [
        Speech("एक"), Speech("दो।", 1.5), Speech("तीन", 1.5), Silence(0.5), Speech("चार", 1.5),
        Silence(2.0), Speech("पाँच", 1.0),
    ]


@pytest.mark.parametrize("tag", ["<alpha=fast>", "<sil=5>", "<sil=1h>", "<speed=2>", "<alpha=0>",
                                 "<sil=500 ms s>", "<sil=120s>", "<alpha>"])
def test_malformed_tag_is_an_error_naming_it(tag):
    with pytest.raises(LavanyaError) as error:
        segment_text(f"नमस्ते {tag} दुनिया")
    assert tag in error.value.message


def test_angle_brackets_in_prose_are_text():
    assert segment_text("x < 5 और y > 3") == [Speech("x < 5 और y > 3")]


def test_run_on_sentence_is_cut_at_commas_under_the_cap():
    clause = "यह एक लंबा उपवाक्य है जिसमें कई शब्द हैं"
    sentence = ", ".join([clause] * 20)
    items = segment_text(sentence, max_chars=120)
    texts = [item.text for item in items]
    assert len(texts) > 1
    assert all(len(text) <= 120 for text in texts)
    assert all(text.endswith(",") for text in texts[:-1])  # cut right after a comma
    assert " ".join(texts).split() == sentence.split()


def test_run_on_sentence_without_commas_is_cut_at_spaces():
    sentence = " ".join(["शब्द"] * 200)
    texts = [item.text for item in segment_text(sentence, max_chars=50)]
    assert all(len(text) <= 50 for text in texts)
    assert " ".join(texts).split() == sentence.split()


@pytest.mark.parametrize("text", ["", "   ", "।।", "?!. ,", "<sil=1s>", "\n\n"])
def test_nothing_to_say(text):
    with pytest.raises(LavanyaError, match="nothing to say"):
        segment_text(text)


# -- digit strings that are no amount ------------------------------------------------------


@pytest.mark.parametrize("number, after_cue, words", [
    ("9975012500", False, "nine nine seven five zero one two five zero zero"),  # ten digits: a phone number
    ("12500000", False, "one crore twentyfive lakh"),  # eight digits: an amount, as before
    ("12,500", True, "twelve thousand five hundred"),  # group commas: an amount even after a cue
    ("700", True, "seven zero zero"),  # after a cue, three digits or more are read out
    ("25", True, "twentyfive"),  # "flat number 25"
    ("2.5", True, "two point five"),
])
def test_identifiers_are_read_digit_by_digit(number, after_cue, words):
    assert TABLE.spell(number, after_cue) == words.split()


@pytest.mark.parametrize("word", ["number", "Phone", "MOBILE", "PIN", "OTP", "नंबर", "नम्बर", "मोबाइल",
                                  "फ\u093cोन", "\u095eोन", "फोन", "পিন", "নম্বর", "எண்", "నంబర్", "നമ്പർ"])
def test_digit_cues_in_any_case_and_nukta_spelling(word):
    assert is_digit_cue(spellings(word))


@pytest.mark.parametrize("word", ["numbers1", "संख्या", "कुल", "price", "है"])
def test_words_that_are_no_digit_cue(word):
    # संख्या also means a count ("the number of students is 500"): an amount follows it
    assert not is_digit_cue(spellings(word))


# -- spelling ---------------------------------------------------------------------------------


def test_latin_words_include_accented_ones_and_exclude_indic():
    assert is_latin_word("café") and is_latin_word("ATM") and is_latin_word("e_mail")
    assert not is_latin_word("फ़ोन") and not is_latin_word("123") and not is_latin_word("😀")


def test_letters_to_spell_drop_accents_case_and_marks():
    assert latin_letters("Café_2") == ["c", "a", "f", "e"]


def test_every_letter_has_a_name_in_model_characters():
    assert sorted(LETTER_NAMES) == list("abcdefghijklmnopqrstuvwxyz")
    for letter, names in LETTER_NAMES.items():
        assert names and all(name and name.isprintable() and " " not in name for name in names), letter
