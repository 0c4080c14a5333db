"""What a new user hit: text that can only partly be spoken, through synth and serve.

Each command speaks what it can and reports the rest; it fails only when nothing in the text can
be spoken (or under --strict), and empty text fails before any voice is loaded.
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import quote

import httpx
import pytest
import soundfile

from lavanya_cli.modeltree.layout import BUNDLED_ROOT
from _helpers import synth, tts_body
from servekit import WAIT_SECONDS, GatedVoice, start_server
from synthkit import shared_voice, shared_voice_root

NEW_USERS_TEXT = "मेरा फ़ोन नंबर 9876543210 है। Please call me tomorrow."
UNSPEAKABLE = "你好 世界।"  # no voice here has a word of it


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The tiny voice's tree with the bundled Hindi number table and no phone_dict/english, as
    the new user's tree was."""
    tree = shutil.copytree(shared_voice_root(), tmp_path_factory.mktemp("tree") / "Fastspeech2_HS")
    (tree / "numToText").mkdir()
    shutil.copy(BUNDLED_ROOT / "numToText" / "hindi.csv", tree / "numToText" / "hindi.csv")
    assert not (tree / "phone_dict" / "english").exists()
    return tree


# -- synth -------------------------------------------------------------------------------------


def test_synth_speaks_every_sentence_it_can_and_reports_the_rest(cli, root, tmp_path):
    code, out, err = synth(cli, "--text", f"{NEW_USERS_TEXT} {UNSPEAKABLE}", "-o", tmp_path / "out.wav",
                           "--format", "json", models=root)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["sentences"], summary["skipped_sentences"]) == (2, 1)
    assert summary["spelled"] == ["Please", "call", "me", "tomorrow"]
    assert summary["unpronounced"] == ["你好", "世界"] and summary["incomplete"] == []
    duration = soundfile.info(tmp_path / "out.wav").duration
    assert duration > 0.5 and summary["audio_seconds"] == pytest.approx(duration, abs=1e-3)


def test_synth_warns_about_spelled_and_left_out_words(cli, root, tmp_path):
    code, out, err = synth(cli, "--text", f"{NEW_USERS_TEXT} {UNSPEAKABLE}", "-o", tmp_path / "out.wav", models=root)
    assert (code, out) == (0, "")
    assert "lavanya: warning: Please: spelled letter by letter: no phone_dict/english\n" in err
    assert "lavanya: warning: 你好: not pronounced" in err
    assert "9876543210" not in err  # the phone number is read digit by digit, nothing to report


def test_the_english_sentence_alone_is_spoken_not_refused(cli, root, tmp_path):
    code, _, err = synth(cli, "--text", "Please call me tomorrow.", "-o", tmp_path / "en.wav", models=root)
    assert code == 0, err
    assert soundfile.info(tmp_path / "en.wav").duration > 0.5


def test_synth_fails_only_when_nothing_at_all_can_be_spoken(cli, root, tmp_path):
    code, out, err = synth(cli, "--text", f"{UNSPEAKABLE} 😀।", "-o", tmp_path / "none.wav", models=root)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "nothing to say: no word of the text can be spoken" in err
    assert list(tmp_path.iterdir()) == []


def test_strict_fails_on_a_spelled_or_left_out_word(cli, root, tmp_path):
    for text, report in ((NEW_USERS_TEXT, "Please: spelled letter by letter"), (f"नमस्ते। {UNSPEAKABLE}", "你好")):
        code, _, err = synth(cli, "--strict", "--text", text, "-o", tmp_path / "strict.wav", models=root)
        assert code == 2 and report in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_a_batch_job_with_nothing_speakable_fails_before_any_audio(cli, root, tmp_path):
    """Each job of a batch is a text of its own: one with nothing speakable is named, and (as for
    every mistake in a batch) no WAV is written."""
    (tmp_path / "lines.txt").write_text(f"नमस्ते।\n{UNSPEAKABLE}\n", encoding="utf-8")
    code, _, err = synth(cli, "--lines", tmp_path / "lines.txt", "--output-dir", tmp_path / "out", models=root)
    assert code == 2 and "lines.txt:2" in err and "nothing to say" in err
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("text", ["", "   ", " ?! । ", "<sil=1s>"])
def test_empty_text_fails_before_any_voice_is_loaded(cli, root, tmp_path, monkeypatch, text):
    from lavanya_cli.speech.voice import Voice

    def no_loading(*args, **kwargs):
        raise AssertionError("a voice was loaded for empty text")

    monkeypatch.setattr(Voice, "load", no_loading)
    code, out, err = synth(cli, "--text", text, "-o", tmp_path / "x.wav", models=root)
    assert (code, out) == (2, "") and "nothing to say" in err and err.count("\n") == 1
    # not even the voice is looked for: a voice that does not exist is not what the user hears about
    code, _, err = cli("synth", "--models", root, "--lang", "klingon", "--gender", "male", "--text", text,
                       "-o", tmp_path / "x.wav")
    assert code == 2 and "nothing to say" in err and "klingon" not in err


# -- serve -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    voice = GatedVoice(shared_voice())
    running = start_server([voice])
    with httpx.Client(base_url=running.url, timeout=WAIT_SECONDS) as client:
        yield voice, client
    voice.allow(100)
    running.stop()


def test_serve_speaks_the_speakable_sentences_and_names_the_rest(server):
    voice, client = server
    voice.allow(100)
    response = client.post("/api/tts", json=tts_body(f"नमस्ते। {UNSPEAKABLE} ठीक है।"))
    assert response.status_code == 200
    assert response.headers["x-sentences"] == "2"
    assert response.headers["x-unpronounced"] == quote("你好 世界")
    assert len(response.content) > 44 + 22050 // 10


@pytest.mark.parametrize("text", ["", "  ", "।", "<sil=1s>", UNSPEAKABLE])
def test_serve_answers_422_when_nothing_can_be_spoken_without_rendering(server, text):
    voice, client = server
    before = voice.entered
    response = client.post("/api/tts", json=tts_body(text))
    assert response.status_code == 422
    assert response.json()["error"] == "unspeakable" and "nothing to say" in response.json()["detail"]
    assert voice.entered == before  # no sentence was sent to the model
