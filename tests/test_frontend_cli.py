"""``lavanya text`` and the shared text-source resolution."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

from lavanya_cli.cli import main
from lavanya_cli.cli.textinput import read_text_source
from lavanya_cli.errors import LavanyaError

SHARED_MAIN = Path(__file__).resolve().parents[2] / "shared" / "iitm-fs2hs" / "main"

DICTIONARY = {"नमस्ते": "namastE", "दुनिया": "duniyA", "दो": "dO"}


@pytest.fixture
def root(tmp_path):
    """A pointer-only tree: config and dictionary, no weights at all."""
    model = tmp_path / "root" / "hindi" / "male" / "model"
    model.mkdir(parents=True)
    tokens = ["<blank>", "<unk>", *sorted(set("".join(DICTIONARY.values()))), "$", ".", "<sos/eos>"]
    (model / "config.yaml").write_text(yaml.safe_dump({"token_list": tokens}, allow_unicode=True),
                                       encoding="utf-8")
    (model / "model.pth").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 148700000\n")
    (tmp_path / "root" / "phone_dict").mkdir()
    (tmp_path / "root" / "phone_dict" / "hindi").write_text(
        "".join(f"{w} {p}\n" for w, p in DICTIONARY.items()), encoding="utf-8")
    (tmp_path / "root" / "numToText").mkdir()
    (tmp_path / "root" / "numToText" / "hindi.csv").write_text("2,दो\n", encoding="utf-8")
    return tmp_path / "root"


def run(capsys, *args: str, stdin: str | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(["text", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_line_per_sentence_exactly_the_model_input(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root),
                         "नमस्ते, दुनिया। <sil=1s> दो 2!")
    assert code == 0
    assert out.splitlines() == ["$namastE. $duniyA.", "$dOdO."]
    assert err == f"lavanya: hindi/male from {root}\n"  # which root's resources were used


def test_json_lists_words_not_pronounced_and_spelled(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root),
                         "--format", "json", "नमस्ते 你好। दुनिया SMS")
    assert code == 0
    data = json.loads(out)
    assert [s["model_input"] for s in data["sentences"]] == ["$namastE.", "$duniyAEsEmEs."]
    assert data["sentences"][0]["unpronounced"] == ["你好"] and data["sentences"][0]["spelled"] == []
    assert data["sentences"][1]["unpronounced"] == [] and data["sentences"][1]["spelled"] == ["SMS"]
    assert data["frontend"] == "phrases"


def test_text_mode_warns_on_stderr_only(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root), "नमस्ते 你好")
    assert code == 0
    assert out == "$namastE.\n"
    assert "你好: not pronounced" in err


def test_a_sentence_with_nothing_speakable_prints_no_line(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root), "--format", "json",
                         "你好। दुनिया")
    assert code == 0
    assert [s["model_input"] for s in json.loads(out)["sentences"]] == ["", "$duniyA."]
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root), "你好। दुनिया")
    assert (code, out) == (0, "$duniyA.\n")
    assert "你好: not pronounced" in err


def test_nothing_speakable_anywhere_is_an_error(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root), "你好। 世界")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "nothing to say: no word of the text can be spoken" in err and "世界" in err


def test_strict_fails_on_an_unpronounceable_word(capsys, root):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root), "--strict",
                         "नमस्ते Xyzzy")
    assert code == 2
    assert out == ""
    assert "Xyzzy" in err and "Traceback" not in err


def test_text_from_stdin_and_from_a_file(capsys, root, tmp_path, monkeypatch):
    code, out, _ = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root),
                       stdin="दुनिया\n", monkeypatch=monkeypatch)
    assert (code, out) == (0, "$duniyA.\n")
    text_file = tmp_path / "in.txt"
    text_file.write_text("नमस्ते\nदुनिया\n", encoding="utf-8")
    code, out, _ = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(root),
                       "--input", str(text_file))
    assert (code, out) == (0, "$namastE.\n$duniyA.\n")


@pytest.mark.parametrize("args, message", [
    (["नमस्ते"], None),
    (["।।"], "nothing to say"),
    (["--text", ""], "nothing to say"),
    (["नमस्ते <sil=abc> दुनिया"], "<sil=abc>"),
])
def test_usage_errors_exit_2(capsys, root, args, message):
    base = ["--lang", "hindi", "--gender", "male", "--models", str(root)]
    if message is None:  # unknown voice
        base = ["--lang", "klingon", "--gender", "male", "--models", str(root)]
        message = "hindi/male"  # the error lists the voices there are
    code, out, err = run(capsys, *base, *args)
    assert code == 2
    assert out == ""
    assert message in err and err.count("\n") == 1


@pytest.mark.skipif(not SHARED_MAIN.is_dir(), reason="no ../shared")
def test_real_tree_of_pointers(capsys):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--models", str(SHARED_MAIN),
                         "आप कैसे हैं? ठीक हूँ।")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("$") and line.endswith(".") for line in lines)


def test_read_text_source_takes_exactly_one(tmp_path):
    assert read_text_source("a", None, None) == "a"
    assert read_text_source(None, "b", None) == "b"
    path = tmp_path / "t.txt"
    path.write_text("\ufeffc", encoding="utf-8")
    assert read_text_source(None, None, path) == "c"
    with pytest.raises(LavanyaError, match="more than one"):
        read_text_source("a", "b", None)
    with pytest.raises(LavanyaError, match="no such file"):
        read_text_source(None, None, tmp_path / "missing.txt")


def test_read_text_source_refuses_to_wait_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(""))
    with pytest.raises(LavanyaError, match="no text"):
        read_text_source(None, None, None)


def test_empty_text_fails_before_the_voice_is_looked_for(capsys, root):
    # klingon/male does not exist: the complaint is about the text, which is checked first
    for text in ("", " ।। ", "<sil=1s>"):
        code, out, err = run(capsys, "--lang", "klingon", "--gender", "male", "--models", str(root), "--text", text)
        assert (code, out) == (2, "")
        assert "nothing to say" in err and "klingon" not in err


# -- the bundled tree, as a new user meets it ---------------------------------------------------


def test_bundled_tree_speaks_the_new_users_text(capsys, only_bundled):
    from lavanya_cli.frontend.phones import PhoneDictionary
    from lavanya_cli.modeltree.layout import BUNDLED_ROOT

    code, out, err = run(capsys, "--lang", "hindi", "--gender", "male", "--format", "json",
                         "मेरा फ़ोन नंबर 9876543210 है। Please call me tomorrow.")
    assert code == 0, err
    first, second = json.loads(out)["sentences"]
    assert first["problems"] == [] and second["problems"] == []
    lexicon = PhoneDictionary(BUNDLED_ROOT / "phone_dict" / "english", fold_case=True)
    words = ("please", "call", "me", "tomorrow")
    assert second["model_input"] == "$" + "".join(lexicon.lookup(word) for word in words) + "."


def test_bundled_tree_without_the_asked_voice_says_how_to_get_the_real_ones(capsys, only_bundled):
    code, out, err = run(capsys, "--lang", "hindi", "--gender", "female", "नमस्ते")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert "no voice hindi/female here: the bundled tree is a small demo with hindi/male only" in err
    assert "git clone https://github.com/smtiitm/Fastspeech2_HS" in err
    assert 'git lfs pull --include="hindi/female/**,vocoder/female/**"' in err and "--models Fastspeech2_HS" in err
