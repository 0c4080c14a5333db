"""Frontend.prepare per voice kind, on small trees the tests write and on the real upstream data."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest
import yaml

from lavanya_cli.modeltree.config import read_config
from lavanya_cli.errors import LavanyaError
from lavanya_cli.frontend import Frontend, FrontendKind, detect_kind
from lavanya_cli.frontend.numbers import NumberTable
from lavanya_cli.frontend.phones import PhoneDictionary
from lavanya_cli.modeltree.layout import ModelRoot

SHARED = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs"
MAIN = SHARED / "main"
NEW = SHARED / "new-models"
needs_main = pytest.mark.skipif(not MAIN.is_dir(), reason="no ../shared/iitm-fs2hs/main")
needs_new = pytest.mark.skipif(not NEW.is_dir(), reason="no ../shared/iitm-fs2hs/new-models")

# -- a small tree written by the tests ---------------------------------------------------

HINDI_DICT = {
    "नमस्ते": "namastE", "दुनिया": "duniyA", "मेरा": "mErA", "एक": "Ek", "दो": "dO",
    "पाँच": "pAMc", "पच्चीस": "paccIs", "सौ": "sऔ", "हज़ार": "hazAr", "लाख": "lAख",
    "करोड़": "karOड़", "दशमलव": "daशamlaw", "विशेष": "wiशEQ", "अजीब": "ajIW",
}
ENGLISH_DICT = {"computer": "kampyUटar", "Hello": "halO"}
NUMBERS = {"1": "एक", "2": "दो", "5": "पाँच", "25": "पच्चीस", "100": "सौ", "1000": "हज़ार",
           "100000": "लाख", "10000000": "करोड़", ".": "दशमलव"}
# tokens: ASCII letters and the Devanagari characters above, "$" and "." (a phrase voice);
# Q and W are deliberately missing: the character map knows Q, nobody knows W.
PHONE_TOKENS = sorted(set("abcdefghijklmnoprstuvwxyzAEIOUMJ") | set("टड़ढशऔखऐ") | {"$", ".", ","})
CHARMAP = {"hindi_male": {"Q": "s"}}


def write_voice(root: Path, language: str, tokens: list[str], stats_marker: str = "fastspeech2_hs"):
    model = root / language / "male" / "model"
    model.mkdir(parents=True)
    config = {
        "token_list": ["<blank>", "<unk>", *tokens, "<sos/eos>"],
        "token_type": "char",
        "normalize_conf": {"stats_file": f"/speech/x/{stats_marker}/feats_stats.npz"},
    }
    (model / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")


def write_resources(root: Path, numbers: bool = True, english: bool = True):
    (root / "phone_dict").mkdir(parents=True, exist_ok=True)
    (root / "phone_dict" / "hindi").write_text(
        "".join(f"{word} {phones}\n" for word, phones in HINDI_DICT.items()), encoding="utf-8")
    if english:
        (root / "phone_dict" / "english").write_text(
            "".join(f"{word} {phones}\n" for word, phones in ENGLISH_DICT.items()), encoding="utf-8")
    if numbers:
        (root / "numToText").mkdir(exist_ok=True)
        (root / "numToText" / "hindi.csv").write_text(
            "".join(f"{key},{word}\n" for key, word in NUMBERS.items()), encoding="utf-8")
    (root / "multilingualcharmap.json").write_text(json.dumps(CHARMAP), encoding="utf-8")


def frontend(root: Path, language: str = "hindi", strict: bool = False) -> Frontend:
    voice = ModelRoot(root).find(language, "male")
    return Frontend.for_voice(voice, read_config(voice.config_path), strict=strict)


@pytest.fixture
def phrase_root(tmp_path):
    write_voice(tmp_path, "hindi", PHONE_TOKENS)
    write_resources(tmp_path)
    return tmp_path


def phones(*words: str) -> str:
    """The dictionary's phones for ``words``, joined without spaces (one phrase)."""
    return "".join(HINDI_DICT.get(word) or ENGLISH_DICT[word] for word in words)


def test_phrases_are_wrapped_and_joined_by_a_space(phrase_root):
    prepared = frontend(phrase_root).prepare("नमस्ते, दुनिया!")
    assert prepared.model_input == f"${phones('नमस्ते')}. ${phones('दुनिया')}."
    assert prepared.unpronounced == []


@pytest.mark.parametrize("number, words", [
    ("25", ["पच्चीस"]),
    ("100", ["एक", "सौ"]),
    ("1,25,000", ["एक", "लाख", "पच्चीस", "हज़ार"]),
    ("12500000", ["एक", "करोड़", "पच्चीस", "लाख"]),
    ("2.5", ["दो", "दशमलव", "पाँच"]),
])
def test_numbers_are_spoken_in_the_language(phrase_root, number, words):
    prepared = frontend(phrase_root).prepare(f"मेरा {number}")
    assert prepared.model_input == "$" + phones("मेरा", *words) + "."


def test_english_word_comes_from_the_english_dictionary_any_case(phrase_root):
    prepared = frontend(phrase_root).prepare("मेरा Computer, hello")
    assert prepared.model_input == f"${phones('मेरा', 'computer')}. ${phones('Hello')}."


def test_unknown_english_word_is_spelled_and_reported(phrase_root):
    prepared = frontend(phrase_root).prepare("मेरा Xyzzy")
    # X Y Z Z Y as Indian English names them: Eks, wAI, zEड (all among this voice's tokens)
    assert prepared.model_input == f"${phones('मेरा')}EkswAIzEडzEडwAI."
    assert prepared.spelled == ["Xyzzy"] and prepared.unpronounced == [] and prepared.incomplete == []
    assert prepared.problems == ["Xyzzy: spelled letter by letter: not in phone_dict/english"]
    with pytest.raises(LavanyaError, match="Xyzzy: spelled letter by letter"):
        frontend(phrase_root, strict=True).prepare("मेरा Xyzzy")


def test_word_outside_the_dictionary_goes_to_the_unified_parser(phrase_root):
    # आप is not in the test dictionary; the parser gives "aa p" -> "Ap"
    assert frontend(phrase_root).prepare("आप").model_input == "$Ap."


def test_characters_outside_the_tokens_use_the_charmap_or_are_reported(phrase_root):
    prepared = frontend(phrase_root).prepare("विशेष अजीब")
    # विशेष = wiशEQ: Q is no token, the charmap maps it to s
    # अजीब = ajIW: W is no token and the charmap does not know it: spoken without it, and the
    # report says exactly that (not "not pronounced")
    assert prepared.model_input == "$wiशEsajI."
    assert prepared.unpronounced == [] and prepared.incomplete == ["अजीब"]
    assert prepared.problems == ["अजीब: spoken without W (U+0057): not among the voice's tokens"]


def test_dictionary_words_are_not_spelled(phrase_root):
    prepared = frontend(phrase_root).prepare("COMPUTER")
    assert prepared.model_input == f"${phones('computer')}." and prepared.spelled == []


def test_letter_names_use_characters_the_voice_has(tmp_path):
    # no f, ड, ट, w, z or v: F D T W V Z take their other names (EP, dI, tI, dabalyU, BI, jEd)
    write_voice(tmp_path, "hindi", sorted(set("abcdeghijklmnoprstuyAEIOUPB$.")))
    prepared = frontend(tmp_path).prepare("FDTWVZ")
    assert prepared.model_input == "$EPdItIdabalyUBIjEd."
    assert prepared.spelled == ["FDTWVZ"] and prepared.incomplete == []


def test_a_letter_no_name_fits_goes_through_the_character_map(tmp_path):
    write_voice(tmp_path, "hindi", sorted(set("abcdeghijklmnoprstuyAEIOU$.")))
    write_resources(tmp_path)
    (tmp_path / "multilingualcharmap.json").write_text(json.dumps({"hindi_male": {"v": "b"}}), encoding="utf-8")
    prepared = frontend(tmp_path).prepare("V")  # vI, wI, BI: none among the tokens; the map says v -> b
    assert prepared.model_input == "$bI." and prepared.incomplete == []


def test_a_word_too_long_to_spell_is_left_out(phrase_root):
    word = "Pneumonoultramicroscopic"  # 24 letters
    prepared = frontend(phrase_root).prepare(f"मेरा {word}")
    assert prepared.model_input == f"${phones('मेरा')}."
    assert prepared.unpronounced == [word] and "too long to spell (24 letters, at most 20)" in prepared.problems[0]


def test_a_sentence_with_nothing_speakable_comes_back_empty_with_its_report(phrase_root):
    prepared = frontend(phrase_root).prepare("你好 世界")
    assert prepared.model_input == "" and not prepared.spoken
    assert prepared.unpronounced == ["你好", "世界"]


def test_prepare_all_fails_only_when_no_sentence_can_be_spoken(phrase_root):
    fe = frontend(phrase_root)
    first, second = fe.prepare_all(["नमस्ते", "你好"])
    assert first.model_input == f"${phones('नमस्ते')}." and not second.spoken
    with pytest.raises(LavanyaError, match="nothing to say: no word of the text can be spoken .*你好"):
        fe.prepare_all(["你好", "世界"])


@pytest.mark.parametrize("text, written_out", [
    # ten digits: a phone number, digit by digit
    ("मेरा 5125512251", "मेरा पाँच एक दो पाँच पाँच एक दो दो पाँच एक"),
    # after a cue word, three digits or more are read out too, for the whole run of numbers
    ("फोन 125 521", "फोन एक दो पाँच पाँच दो एक"),
    ("PIN is 125", "PIN is एक दो पाँच"),
    # ... but the cue ends at the next word, and amounts stay amounts
    ("फोन 125 मेरा 125", "फोन एक दो पाँच मेरा एक सौ पच्चीस"),
    ("मेरा 125", "मेरा एक सौ पच्चीस"),
    ("मेरा 12500000", "मेरा एक करोड़ पच्चीस लाख"),
    ("फोन 1,25,000", "फोन एक लाख पच्चीस हज़ार"),
])
def test_numbers_that_are_no_amount_are_read_digit_by_digit(phrase_root, text, written_out):
    fe = frontend(phrase_root)
    assert fe.prepare(text).model_input == fe.prepare(written_out).model_input


def test_the_word_cache_is_bounded(phrase_root, monkeypatch):
    from lavanya_cli.frontend import core

    assert frontend(phrase_root)._pronounce.cache_info().maxsize == core.WORD_CACHE_SIZE
    monkeypatch.setattr(core, "WORD_CACHE_SIZE", 4)
    fe = frontend(phrase_root)
    first = fe.prepare("नमस्ते").model_input
    for word in list(HINDI_DICT)[1:] + ["computer", "Hello"]:
        fe.prepare(word)
    assert fe._pronounce.cache_info().currsize == 4  # 15 words seen, the 4 latest kept
    assert fe.prepare("नमस्ते").model_input == first  # forgotten, then looked up again alike


def test_numbers_without_a_table_name_the_missing_file(tmp_path):
    write_voice(tmp_path, "hindi", PHONE_TOKENS)
    write_resources(tmp_path, numbers=False)
    prepared = frontend(tmp_path).prepare("मेरा 25")
    assert prepared.model_input == f"${phones('मेरा')}."
    assert prepared.unpronounced == ["25"]
    assert "numToText/hindi.csv" in prepared.problems[0]
    with pytest.raises(LavanyaError, match="numToText/hindi.csv"):
        frontend(tmp_path, strict=True).prepare("मेरा 25")


def test_parser_alone_serves_without_dictionaries(tmp_path):
    write_voice(tmp_path, "hindi", PHONE_TOKENS)
    prepared = frontend(tmp_path).prepare("आप, कैसे")  # parser: aa p / k ei s ee
    assert prepared.model_input == "$Ap. $kऐsE."
    english = frontend(tmp_path).prepare("आप TV")
    assert english.model_input == "$ApटIvI."  # T V spelled: the voice has v
    assert english.problems == ["TV: spelled letter by letter: no phone_dict/english"]


def test_a_latest_voice_uses_its_own_dictionary(tmp_path):
    model = tmp_path / "hindi_latest" / "male" / "model"
    model.mkdir(parents=True)
    config = {"token_list": ["<blank>", "<unk>", *PHONE_TOKENS, "<sos/eos>"]}
    (model / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    write_resources(tmp_path)
    (tmp_path / "phone_dict" / "hindi_latest").write_text("नमस्ते namaskAr\n", encoding="utf-8")
    voice = ModelRoot(tmp_path).find("hindi", "male")
    assert voice.variant == "latest"
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    assert fe.prepare("नमस्ते").model_input == "$namaskAr."


@pytest.mark.parametrize("text", ["", "  ", "।", "?!", "- ' \""])
def test_empty_or_punctuation_only_sentence(phrase_root, text):
    with pytest.raises(LavanyaError, match="nothing to say"):
        frontend(phrase_root).prepare(text)


def test_phone_voice_separates_words_and_phrases_by_spaces(tmp_path):
    write_voice(tmp_path, "hindi", [t for t in PHONE_TOKENS if t != "$"] + ["<space>"], "fastspeech2_tf")
    write_resources(tmp_path)
    fe = frontend(tmp_path)
    assert fe.kind is FrontendKind.PHONES
    assert fe.prepare("नमस्ते दुनिया, मेरा 25").model_input == " ".join(
        [phones("नमस्ते"), phones("दुनिया"), phones("मेरा"), phones("पच्चीस")])


def test_character_voice_takes_the_cleaned_text(tmp_path):
    urdu_letters = list("یہایکٹسٹےبیسپانچ") + ["<space>", "۔"]
    write_voice(tmp_path, "urdu", urdu_letters, "fastspeech2_tf_char")
    (tmp_path / "numToText").mkdir()
    (tmp_path / "numToText" / "urdu.csv").write_text("25,پچیس\n", encoding="utf-8")
    fe = frontend(tmp_path, "urdu")
    assert fe.kind is FrontendKind.CHARACTERS
    # "(" and '"' are dropped, the comma ends a phrase, 25 is spoken; ۔ is a token and stays
    assert fe.prepare('یہ (ایک) "ٹیسٹ", 25 ہے۔').model_input == "یہ ایک ٹیسٹ پچیس ہے۔"


# -- the kind of voice, from its config --------------------------------------------------


def _kind_by_stats_marker(config: dict) -> FrontendKind:
    """Upstream's directory naming, the independent truth for the main voices."""
    path = config["normalize_conf"]["stats_file"]
    if "fastspeech2_tf_char" in path:
        return FrontendKind.CHARACTERS
    if "fastspeech2_tf/" in path:
        return FrontendKind.PHONES
    assert "fastspeech2_hs" in path, path
    return FrontendKind.PHRASES


def _bare_stats(config: dict) -> dict:
    """What ``lavanya fix-config`` leaves: every stats_file a bare file name."""
    fixed = copy.deepcopy(config)
    for key in ("normalize_conf", "pitch_normalize_conf", "energy_normalize_conf"):
        if isinstance(fixed.get(key), dict) and "stats_file" in fixed[key]:
            fixed[key]["stats_file"] = Path(fixed[key]["stats_file"]).name
    return fixed


@needs_main
def test_kind_of_every_main_voice_with_and_without_the_path_hint():
    voices = ModelRoot(MAIN).voices()
    assert len(voices) == 31
    seen = set()
    for voice in voices:
        config = read_config(voice.config_path)
        expected = _kind_by_stats_marker(config)
        seen.add(expected)
        assert detect_kind(config) is expected, voice.name
        assert detect_kind(_bare_stats(config)) is expected, voice.name
    assert seen == set(FrontendKind)


@needs_main
def test_character_and_english_voices_by_name():
    for language, kind in (("urdu", "characters"), ("punjabi", "characters"), ("english", "phones"),
                           ("hindi", "phrases"), ("tamil", "phrases")):
        for gender in ("male", "female"):
            voice = ModelRoot(MAIN).find(language, gender)
            assert detect_kind(_bare_stats(read_config(voice.config_path))).value == kind


@needs_new
def test_every_new_models_voice_takes_phrases():
    voices = ModelRoot(NEW).voices()
    assert voices
    for voice in voices:
        assert detect_kind(_bare_stats(read_config(voice.config_path))) is FrontendKind.PHRASES, voice.name


# -- the real dictionaries ----------------------------------------------------------------


def _dictionary(language: str) -> dict[str, str]:
    entries = {}
    for line in (MAIN / "phone_dict" / language).read_text(encoding="utf-8").splitlines():
        word, _, phones_ = line.partition(" ")
        entries.setdefault(word, phones_.strip())
    return entries


def _number_words(language: str) -> dict[str, str]:
    with open(MAIN / "numToText" / f"{language}.csv", encoding="utf-8") as handle:
        return {row[0]: row[1] for row in csv.reader(handle) if len(row) == 2}


@needs_main
def test_real_hindi_sentence_with_number_english_and_punctuation():
    hindi, english, numbers = _dictionary("hindi"), _dictionary("english"), _number_words("hindi")
    voice = ModelRoot(MAIN).find("hindi", "male")
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    prepared = fe.prepare("आप कैसे हैं? मेरे पास 25 computer हैं।")
    # "?" is dropped (not a phrase end), so this is one phrase; हैं is not in the dictionary
    # and comes from the parser: h ei q -> hऐq
    words = ["आप", "कैसे"]
    expected = "".join(hindi[w] for w in words) + "hऐq" + hindi["मेरे"] + hindi["पास"]
    expected += hindi[numbers["25"]] + english["computer"] + "hऐq"
    assert prepared.model_input == f"${expected}."
    assert prepared.unpronounced == []


@needs_main
def test_real_hindi_lakh_and_decimal():
    hindi, numbers = _dictionary("hindi"), _number_words("hindi")
    voice = ModelRoot(MAIN).find("hindi", "female")
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    words = [numbers["1"], numbers["100000"], numbers["25"], numbers["1000"]]
    assert all(word in hindi for word in words)
    assert fe.prepare("1,25,000").model_input == "$" + "".join(hindi[w] for w in words) + "."
    decimal = [numbers["3"], numbers["."], numbers["5"]]
    if all(word in hindi for word in decimal):
        assert fe.prepare("3.5").model_input == "$" + "".join(hindi[w] for w in decimal) + "."


@needs_main
def test_real_english_voice():
    english, numbers = _dictionary("english"), _number_words("english")
    voice = ModelRoot(MAIN).find("english", "female")
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    twelve = [english[w] for w in numbers["12"].split()]
    assert fe.prepare("Hello India, 12 computer.").model_input == " ".join(
        [english["Hello"], english["India"], *twelve, english["computer"]])


@needs_main
def test_real_urdu_character_voice_keeps_its_script():
    voice = ModelRoot(MAIN).find("urdu", "male")
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    numbers = _number_words("urdu")
    prepared = fe.prepare("یہ ٹیسٹ 12 ہے۔")
    assert prepared.model_input == f"یہ ٹیسٹ {numbers['12']} ہے۔"
    assert prepared.unpronounced == []


# -- English on the real voices -------------------------------------------------------------

ALPHABET = " ".join("abcdefghijklmnopqrstuvwxyz")


@pytest.mark.skipif(not (MAIN.is_dir() and NEW.is_dir()), reason="no ../shared/iitm-fs2hs")
def test_every_real_phone_voice_can_say_every_letter_name():
    """Spelling uses only characters each voice has (or its character map carries)."""
    checked = 0
    for root in (MAIN, NEW):
        for voice in ModelRoot(root).voices():
            fe = Frontend.for_voice(voice, read_config(voice.config_path))
            if fe.kind is FrontendKind.CHARACTERS:
                continue  # Urdu and Punjabi take their own script: Latin words are not spelled there
            fe.english = PhoneDictionary(root / "no-such-dictionary")  # spell even the single letters
            prepared = fe.prepare(ALPHABET)
            assert len(prepared.spelled) == 26, voice.name
            assert (prepared.incomplete, prepared.unpronounced) == ([], []), voice.name
            checked += 1
    assert checked > 60


@needs_main
def test_real_dictionary_serves_english_before_spelling():
    voice = ModelRoot(MAIN).find("hindi", "male")
    prepared = Frontend.for_voice(voice, read_config(voice.config_path)).prepare("Please call me tomorrow.")
    english = _dictionary("english")
    assert prepared.model_input == "$" + "".join(english[w] for w in ("please", "call", "me", "tomorrow")) + "."
    assert prepared.problems == []


@needs_new
def test_the_new_users_sentence_on_a_tree_without_an_english_dictionary():
    """New-Models has no phone_dict/english: the English sentence is spelled, not lost, and the
    ten-digit phone number is read digit by digit, not as crores."""
    voice = ModelRoot(NEW).find("hindi", "male")
    assert not (NEW / "phone_dict" / "english").exists()
    fe = Frontend.for_voice(voice, read_config(voice.config_path))
    numbers = NumberTable.load(NEW / "numToText" / "hindi.csv")
    first, second = fe.prepare_all(["मेरा फ़ोन नंबर 9876543210 है।", "Please call me tomorrow."])
    spelled_out = " ".join(numbers.word(digit) for digit in "9876543210")
    assert first.model_input == fe.prepare(f"मेरा फ़ोन नंबर {spelled_out} है।").model_input
    assert first.problems == []
    assert second.spoken and second.spelled == ["Please", "call", "me", "tomorrow"]
    assert second.unpronounced == [] and second.incomplete == []
