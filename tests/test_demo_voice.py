"""The bundled demo voice (Fastspeech2_HS/hindi/male) and the code that builds it.

The tree checks run on the committed files; the alignment checks on small synthetic inputs; one
test asks eSpeak NG (the build's teacher, from the espeakng-loader wheel) for a real sentence.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from lavanya_cli.modeltree.layout import BUNDLED_ROOT, DEMO_MARKER, STATS_NAMES, ModelRoot
from lavanya_cli.checks.verify import verify_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "demo_voice"))
import align  # noqa: E402

MAX_BUNDLED_BYTES = 30 * 1024 * 1024  # weights, their ONNX exports, the rest


def demo_voice():
    return ModelRoot(BUNDLED_ROOT).find("hindi", "male")


def test_bundled_tree_is_small_and_marked_demo():
    voice = demo_voice()
    assert voice.demo and voice.vocoder.demo
    total = sum(p.stat().st_size for p in BUNDLED_ROOT.rglob("*") if p.is_file())
    assert total <= MAX_BUNDLED_BYTES
    # real weights, not LFS pointers: a fresh clone can speak
    assert voice.weights_path.stat().st_size > 100_000
    assert voice.vocoder.generator_path.stat().st_size > 100_000


def test_bundled_voice_ships_current_onnx_exports_beside_its_weights():
    from lavanya_cli.speech.export_store import export_problems, find_acoustic_export, find_vocoder_export

    voice = demo_voice()
    for directory in (voice.model_dir, voice.vocoder.directory):
        assert export_problems(directory) == []
    # made from these very weights, so a light install speaks them without torch
    assert find_acoustic_export(voice).directory == voice.model_dir
    assert find_vocoder_export(voice.vocoder).directory == voice.vocoder.directory


def test_bundled_config_names_its_stats_files_bare(shared_tree):
    voice = demo_voice()
    config = yaml.safe_load(voice.config_path.read_text(encoding="utf-8"))
    for key, kind in (("normalize_conf", "feats"), ("pitch_normalize_conf", "pitch"),
                      ("energy_normalize_conf", "energy")):
        assert config[key]["stats_file"] == STATS_NAMES[kind]
        assert voice.stats_path(kind).is_file()
    real = yaml.safe_load((shared_tree / "main" / "hindi" / "male" / "model" / "config.yaml").read_text())
    assert config["token_list"] == real["token_list"]


def test_bundled_tree_passes_verify():
    assert verify_root(BUNDLED_ROOT) == []


def test_bundled_voice_speaks_through_the_voice_loader():
    from lavanya_cli.speech.voice import Voice

    voice = Voice.load(demo_voice())
    chunks = list(voice.synthesize("नमस्ते, आप कैसे हैं?"))
    seconds = sum(chunk.seconds for chunk in chunks)
    assert 0.8 < seconds < 4.0
    samples = np.concatenate([chunk.samples for chunk in chunks])
    assert np.abs(samples).max() > 0.05  # not silence


def test_frame_durations_cover_every_frame_and_follow_token_lengths():
    samples = np.array([2000.0, 300.0, 4500.0, 1200.0])  # token spans in samples
    total = int(samples.sum())
    frames = align.frame_durations(samples, total, hop=256)
    assert frames.sum() == 1 + total // 256  # ESPnet's centred frame count
    assert frames[2] > frames[0] > frames[1]
    # a token boundary moves frames from one token to its neighbour, never loses them
    later = align.frame_durations(samples + np.array([512.0, 0, -512.0, 0]), total, hop=256)
    assert later.sum() == frames.sum() and later[0] == frames[0] + 2 and later[2] == frames[2] - 2


def test_alignment_keeps_each_character_inside_its_word():
    # two words, "am" and "sa", with a pause between them; eSpeak's word 1 is much longer
    segments = [align.Segment("pause", 1000, -1), align.Segment("vowel", 2000, 0),
                align.Segment("nasal", 1000, 0), align.Segment("pause", 500, -1),
                align.Segment("fricative", 3000, 1), align.Segment("vowel", 3000, 1),
                align.Segment("pause", 800, -1)]
    tokens = "$am.$sa."
    owners = align.token_words(tokens, ["am", "sa"])
    assert owners == [-1, 0, 0, -1, -1, 1, 1, -1]
    samples = align.token_samples(tokens, owners, segments)
    assert samples.sum() == pytest.approx(sum(s.samples for s in segments))
    assert samples[1] + samples[2] == pytest.approx(3000)  # word 0 gets exactly its own audio
    assert samples[5] == pytest.approx(3000) and samples[6] == pytest.approx(3000)
    assert samples[0] == pytest.approx(1000) and samples[7] == pytest.approx(800)


def test_word_anchors_are_dropped_when_the_words_do_not_spell_the_sentence():
    assert align.token_words("$abc.", ["ab", "d"]) is None


def test_espeak_teacher_gives_audio_and_timed_phonemes():
    pytest.importorskip("espeakng_loader")
    from teacher import SAMPLE_RATE, Teacher

    rendering = Teacher().render("नमस्ते दोस्त")
    assert 0.5 < len(rendering.audio) / SAMPLE_RATE < 3.0
    starts = [phone.start for phone in rendering.phones]
    assert starts == sorted(starts) and starts[-1] <= len(rendering.audio)
    words = {phone.text_position for phone in rendering.phones if not phone.is_pause}
    assert words == {0, len("नमस्ते ")}  # each phoneme knows the word it belongs to


def test_voices_marks_the_bundled_demo(cli, only_bundled):
    code, out, _ = cli("voices")
    assert code == 0
    assert "hindi/male [bundled demo]" in out
