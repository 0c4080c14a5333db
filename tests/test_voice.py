"""The Voice object on a tiny random-weight voice in the real layout (see synthkit)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import torch

from lavanya_cli.errors import LavanyaError
from lavanya_cli.testing.scaffold import write_lfs_pointer
from lavanya_cli.speech.vocoder import load_hifigan
from lavanya_cli.speech.voice import AudioChunk, Voice
from lavanya_cli.speech.voice_files import DEFAULT_MEL_SCALE
from synthkit import shared_voice, shared_voice_root

SENTENCE = "नमस्ते, आप कैसे हैं?"


def _seconds(chunks) -> float:
    return sum(chunk.seconds for chunk in chunks)


@pytest.fixture
def voice_copy(tmp_path):
    """A private copy of the tiny tree, for tests that change files in it."""
    return shutil.copytree(shared_voice_root(), tmp_path / "Fastspeech2_HS")


def test_one_chunk_per_sentence_with_what_was_spoken():
    chunks = list(shared_voice().synthesize("नमस्ते। ठीक है।"))
    assert [chunk.text for chunk in chunks] == ["नमस्ते।", "ठीक है।"]
    assert all(chunk.model_input.startswith("$") and chunk.sample_rate == 22050 for chunk in chunks)
    assert all(chunk.samples.dtype == np.float32 and np.abs(chunk.samples).max() <= 1.0 for chunk in chunks)
    assert all(chunk.seconds > 0.1 for chunk in chunks)


def test_alpha_two_doubles_the_length():
    voice = shared_voice()
    normal = _seconds(voice.synthesize(SENTENCE))
    slow = _seconds(voice.synthesize(SENTENCE, alpha=2.0))
    tagged = _seconds(voice.synthesize("<alpha=2>" + SENTENCE))
    assert slow == pytest.approx(2 * normal, rel=0.05)
    assert tagged == pytest.approx(slow, rel=0.01)


def test_silence_tag_adds_a_second():
    voice = shared_voice()
    plain = _seconds(voice.synthesize("नमस्ते। ठीक है।"))
    paused = list(voice.synthesize("नमस्ते। <sil=1s> ठीक है।"))
    assert _seconds(paused) - plain == pytest.approx(1.0, abs=1e-3)
    assert [chunk.is_silence for chunk in paused] == [False, True, False]
    assert not paused[1].samples.any()


def test_sentence_silence_goes_between_sentences_only():
    voice = shared_voice()
    plain = _seconds(voice.synthesize("नमस्ते। ठीक है। चलो।"))
    spaced = _seconds(voice.synthesize("नमस्ते। ठीक है। चलो।", sentence_silence=0.25))
    assert spaced - plain == pytest.approx(0.5, abs=1e-3)


def test_vocoder_gets_upstream_scaled_mel():
    voice = shared_voice()
    chunk = voice.speak("$namastE.")
    vocoder = load_hifigan(voice.spec.vocoder.config_path, voice.spec.vocoder.generator_path)
    with torch.no_grad():
        expected = vocoder(torch.from_numpy(chunk.mel).T.unsqueeze(0) * DEFAULT_MEL_SCALE).reshape(-1).numpy()
    np.testing.assert_allclose(chunk.samples, expected, atol=1e-5)


def test_per_voice_settings_change_the_scaling(voice_copy):
    model_dir = voice_copy / "hindi" / "male" / "model"
    (model_dir / "lavanya.yaml").write_text("mel_scale: 1.0\npcm_scale: 16384\n")
    voice = Voice.load("hindi", "male", models=voice_copy)
    chunk = voice.speak("$namastE.")
    vocoder = load_hifigan(voice.spec.vocoder.config_path, voice.spec.vocoder.generator_path)
    with torch.no_grad():
        expected = vocoder(torch.from_numpy(chunk.mel).T.unsqueeze(0)).reshape(-1).numpy()
    np.testing.assert_allclose(chunk.samples, expected, atol=1e-5)
    np.testing.assert_array_equal(chunk.to_int16(), (chunk.samples * 16384).astype(np.int16))


def test_pcm_clips_where_upstream_wraps():
    chunk = AudioChunk(np.array([1.0, -1.0, 0.5], dtype=np.float32), 22050)
    assert chunk.to_int16().tolist() == [32767, -32768, 16384]


def test_loading_never_writes_the_voice_and_works_from_elsewhere(voice_copy, tmp_path, monkeypatch):
    config = voice_copy / "hindi" / "male" / "model" / "config.yaml"
    before = (config.read_bytes(), os.stat(config).st_mtime_ns)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    voice = Voice.load("hindi", "male", models=os.path.relpath(voice_copy, elsewhere))
    assert list(voice.synthesize("नमस्ते।"))
    assert (config.read_bytes(), os.stat(config).st_mtime_ns) == before
    assert sorted(p.name for p in config.parent.iterdir()) == sorted(
        ["config.yaml", "feats_stats.npz", "pitch_stats.npz", "energy_stats.npz", "feats_type", "model.pth"])


def test_real_weights_win_over_a_root_of_pointers(voice_copy, tmp_path, monkeypatch):
    pointers = shutil.copytree(voice_copy, tmp_path / "pointers")
    write_lfs_pointer(pointers / "hindi" / "male" / "model" / "model.pth", b"real weights elsewhere")
    monkeypatch.setenv("LAVANYA_MODELS", str(pointers))
    monkeypatch.chdir(voice_copy.parent)  # ./Fastspeech2_HS holds real weights
    voice = Voice.load("hindi", "male")
    assert voice.spec.root.resolve() == voice_copy.resolve()


def test_pointer_weights_say_how_to_fetch_them(voice_copy):
    write_lfs_pointer(voice_copy / "hindi" / "male" / "model" / "model.pth", b"x" * 1000)
    with pytest.raises(LavanyaError) as error:
        Voice.load("hindi", "male", models=voice_copy)
    assert "LFS pointer" in error.value.message and 'git lfs pull --include="' in error.value.message


@pytest.mark.parametrize("missing", ["hindi/male/model/pitch_stats.npz", "vocoder/male/aryan/hifigan/generator"])
def test_missing_file_is_named(voice_copy, missing):
    (voice_copy / missing).unlink()
    with pytest.raises(LavanyaError, match=f"{missing.rsplit('/', 1)[1]}: .* is missing"):
        Voice.load("hindi", "male", models=voice_copy)


def test_strict_refuses_an_unpronounceable_or_spelled_word():
    voice = shared_voice()
    assert list(voice.synthesize("नमस्ते 你好।"))[0].unpronounced == ["你好"]
    assert list(voice.synthesize("नमस्ते zzqx।"))[0].model_input.startswith("$namastE")
    voice.frontend.strict = True
    try:
        with pytest.raises(LavanyaError, match="你好: not pronounced"):
            voice.plan("नमस्ते 你好।")
        with pytest.raises(LavanyaError, match="zzqx: spelled letter by letter"):
            voice.plan("नमस्ते zzqx।")
    finally:
        voice.frontend.strict = False


def test_a_sentence_with_nothing_speakable_is_left_out_with_its_pause():
    voice = shared_voice()
    plan = voice.plan("你好। नमस्ते। 世界। ठीक है।", sentence_silence=0.25)
    assert [(u.text, u.left_out, u.silence_seconds) for u in plan] == [
        ("", "你好।", 0.0), ("नमस्ते।", "", 0.0), ("", "世界।", 0.0), ("", "", 0.25), ("ठीक है।", "", 0.0)]
    assert [u.unpronounced for u in plan if u.left_out] == [("你好",), ("世界",)]
    chunks = list(voice.render(plan))
    assert [chunk.text for chunk in chunks] == ["नमस्ते।", "", "ठीक है।"]
    # the same audio as the text without the unspeakable sentences: one pause, no extra one
    expected = list(voice.synthesize("नमस्ते। ठीक है।", sentence_silence=0.25))
    assert [len(c.samples) for c in chunks] == [len(c.samples) for c in expected]


def test_a_text_with_nothing_speakable_at_all_fails_before_any_audio():
    with pytest.raises(LavanyaError, match="nothing to say: no word of the text can be spoken"):
        shared_voice().plan("你好। 世界।")
