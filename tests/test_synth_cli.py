"""``lavanya synth`` end to end on the tiny random-weight voices (see synthkit)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from lavanya_cli.testing.scaffold import write_lfs_pointer
from _helpers import synth
from synthkit import shared_voice_root

TEXT = "नमस्ते, आप कैसे हैं? ठीक है।"


def test_writes_a_mono_16_bit_wav_and_says_which_voice_spoke(cli, tmp_path):
    code, out, err = synth(cli, "--text", TEXT, "-o", tmp_path / "hello.wav")
    assert code == 0 and out == ""
    info = soundfile.info(tmp_path / "hello.wav")
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    assert info.duration > 0.5
    assert f"hindi/male from {shared_voice_root()}" in err


def test_json_summary_matches_the_wav(cli, tmp_path):
    code, out, _ = synth(cli, TEXT, "-o", tmp_path / "a.wav", "--format", "json", "--plot", tmp_path / "mel.png")
    assert code == 0
    summary = json.loads(out)
    assert summary["sentences"] == 2
    assert summary["audio_seconds"] == pytest.approx(soundfile.info(tmp_path / "a.wav").duration, abs=1e-3)
    assert summary["real_time_factor"] == pytest.approx(
        summary["synthesis_seconds"] / summary["audio_seconds"], rel=0.01)
    assert summary["voices"][0]["root"] == str(shared_voice_root())
    assert (tmp_path / "mel.png").read_bytes().startswith(b"\x89PNG")


def test_text_from_a_file_and_from_stdin(cli, tmp_path, monkeypatch):
    (tmp_path / "in.txt").write_text(TEXT, encoding="utf-8")
    assert synth(cli, "--input", tmp_path / "in.txt", "-o", tmp_path / "file.wav")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(TEXT))
    assert synth(cli, "-o", tmp_path / "stdin.wav")[0] == 0
    assert soundfile.info(tmp_path / "file.wav").frames == soundfile.info(tmp_path / "stdin.wav").frames


def test_lines_give_one_wav_per_non_empty_line(cli, tmp_path):
    (tmp_path / "lines.txt").write_text("नमस्ते।\n\nठीक है।\n", encoding="utf-8")
    code, _, _ = synth(cli, "--lines", tmp_path / "lines.txt", "--output-dir", tmp_path / "out")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001.wav", "0002.wav"]


def test_jsonl_loads_each_voice_once(cli, tmp_path, monkeypatch):
    from lavanya_cli.speech.voice import Voice

    loads = []
    real_load = Voice.load.__func__

    def counting_load(cls, voice, *args, **kwargs):
        if kwargs.get("engine") != "torch":  # not the reference an export is checked against
            loads.append(voice.name)  # the batch finds each voice first, then loads it by its VoiceSpec
        return real_load(cls, voice, *args, **kwargs)

    monkeypatch.setattr(Voice, "load", classmethod(counting_load))
    lines = [
        {"text": "नमस्ते।", "lang": "hindi", "gender": "male", "output": "m1.wav"},
        {"text": "नमस्ते।", "lang": "hindi", "gender": "female", "output": "f1.wav"},
        {"text": "नमस्ते।", "lang": "hindi", "gender": "male", "alpha": 2, "output": "m2.wav"},
    ]
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n")
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", tmp_path / "jobs.jsonl",
                       "--output-dir", tmp_path / "out")
    assert code == 0, err
    assert sorted(loads) == ["hindi/female", "hindi/male"]
    m1, m2 = (soundfile.info(tmp_path / "out" / name).duration for name in ("m1.wav", "m2.wav"))
    assert m2 == pytest.approx(2 * m1, rel=0.05)
    assert (tmp_path / "out" / "f1.wav").is_file()


@pytest.mark.parametrize("text, message", [
    ("", "nothing to say"),
    (" ?! । ", "nothing to say"),
    ("नमस्ते <sil=fast>", "malformed tag <sil=fast>"),
])
def test_bad_text_is_one_line_and_writes_nothing(cli, tmp_path, text, message):
    code, out, err = synth(cli, "--text", text, "-o", tmp_path / "x.wav")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_voice_lists_the_voices(cli, tmp_path):
    code, _, err = cli("synth", "--models", shared_voice_root(), "--lang", "tamil", "--gender", "male",
                       "--text", "x", "-o", tmp_path / "x.wav")
    assert code == 2 and err.count("\n") == 1
    assert "voices there: hindi/female, hindi/male" in err


def test_pointer_weights_exit_2_with_the_pull_command(cli, tmp_path):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    write_lfs_pointer(root / "hindi" / "male" / "model" / "model.pth", b"weights")
    code, _, err = cli("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--text", "नमस्ते",
                       "-o", tmp_path / "x.wav")
    assert code == 2 and err.count("\n") == 1
    assert "model.pth" in err and "git lfs pull --include=" in err
    assert not (tmp_path / "x.wav").exists()


def test_a_voice_of_pointers_is_passed_over_for_the_demo_and_the_user_told_why(cli, tmp_path, monkeypatch):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    write_lfs_pointer(root / "hindi" / "male" / "model" / "model.pth", b"weights")
    monkeypatch.setenv("LAVANYA_MODELS", str(root))
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("synth", "--lang", "hindi", "--gender", "male", "--text", "नमस्ते", "-o", tmp_path / "x.wav",
                       "--format", "json")
    assert code == 0
    spoke = json.loads(out)["voices"][0]
    assert spoke["bundled"] and spoke["demo"]
    assert len(spoke["skipped"]) == 1 and "model.pth" in spoke["skipped"][0]
    assert "git lfs pull --include=" in spoke["skipped"][0]
    _, _, err = cli("synth", "--lang", "hindi", "--gender", "male", "--text", "नमस्ते", "-o", tmp_path / "x.wav")
    lines = err.splitlines()
    assert lines[0].startswith(f"lavanya: passed over {root}") and "Git LFS pointer" in lines[0]
    assert "(bundled demo voice)" in lines[1]


def test_a_vocoder_for_another_sample_rate_is_refused_before_loading(cli, tmp_path):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    vocoder_config = root / "vocoder" / "male" / "aryan" / "hifigan" / "config.json"
    vocoder_config.write_text(json.dumps({**json.loads(vocoder_config.read_text()), "sampling_rate": 16000}))
    code, _, err = cli("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--text", "नमस्ते",
                       "-o", tmp_path / "x.wav")
    assert code == 2 and err.count("\n") == 1
    assert str(vocoder_config) in err and "sample rate 22050 here, 16000 in the vocoder" in err
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.slow  # a subprocess
def test_stdout_gets_the_wav_and_nothing_else_and_stderr_stays_quiet(tmp_path):
    """A fresh process from another directory, no NLTK data anywhere: the real console experience."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONWARNINGS": "default"}
    env.pop("NLTK_DATA", None)
    result = subprocess.run(
        [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models", os.path.relpath(shared_voice_root(), elsewhere),
         "--lang", "hindi", "--gender", "male", "--text", TEXT, "-o", "-"],
        cwd=elsewhere, env=env, capture_output=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()
    data, rate = soundfile.read(io.BytesIO(result.stdout), dtype="int16")
    assert rate == 22050 and data.ndim == 1 and len(data) > 0
    # a pipe cannot seek: the WAV streams out with a header for a stream of unknown length
    assert result.stdout[:4] == b"RIFF" and result.stdout[4:8] == b"\xff\xff\xff\xff"
    assert len(result.stdout) == 44 + 2 * len(data)
    lines = result.stderr.decode().splitlines()
    assert lines and all(line.startswith("lavanya: ") for line in lines), lines
    assert not (tmp_path / "nltk_data").exists()


def test_synth_help_imports_neither_torch_nor_espnet():
    probe = ("import sys\nfrom lavanya_cli.cli import main\ntry:\n    main(['synth', '--help'])\nexcept SystemExit:\n"
             "    pass\nprint('heavy' if {'torch', 'espnet2'} & set(sys.modules) else 'light', file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert "--sentence-silence" in result.stdout
    assert result.stderr.strip().endswith("light")


# --- one voice, no --lang/--gender ---------------------------------------------------------------

def _one_voice_root(tmp_path: Path, keep: str = "male") -> Path:
    """A copy of the shared tree with one hindi voice left (its export is the shared one's)."""
    root = shutil.copytree(shared_voice_root(), tmp_path / "one")
    shutil.rmtree(root / "hindi" / ("female" if keep == "male" else "male"))
    return root


def test_a_tree_with_one_voice_speaks_without_lang_and_gender_and_says_so(cli, tmp_path):
    root = _one_voice_root(tmp_path)
    code, out, err = cli("synth", "--models", root, "--text", TEXT, "-o", tmp_path / "hello.wav")
    assert code == 0, err
    assert soundfile.info(tmp_path / "hello.wav").duration > 0.5
    (voice_line,) = [line for line in err.splitlines() if "hindi/male" in line]
    assert voice_line.startswith(f"lavanya: hindi/male from {root}") and "the only voice there" in voice_line


def test_lines_on_a_tree_with_one_voice_need_no_lang_and_gender(cli, tmp_path):
    root = _one_voice_root(tmp_path, keep="female")
    (tmp_path / "lines.txt").write_text("नमस्ते।\nठीक है।\n", encoding="utf-8")
    code, _, err = cli("synth", "--models", root, "--lines", tmp_path / "lines.txt", "--output-dir", tmp_path / "out")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0001.wav", "0002.wav"]
    assert f"hindi/female from {root}" in err


def test_the_bundled_demo_speaks_on_a_fresh_install_without_lang_and_gender(cli, tmp_path, only_bundled):
    code, _, err = cli("synth", "--text", "नमस्ते", "-o", "hello.wav")
    assert code == 0, err
    assert soundfile.info(tmp_path / "hello.wav").duration > 0.1
    assert "hindi/male (bundled demo voice)" in err and "the only voice there" in err


def test_several_voices_still_need_lang_and_gender_and_the_line_lists_them(cli, tmp_path):
    for extra in ((), ("--lines", tmp_path / "lines.txt", "--output-dir", tmp_path / "out")):
        (tmp_path / "lines.txt").write_text("नमस्ते।\n", encoding="utf-8")
        args = extra or ("--text", TEXT, "-o", tmp_path / "x.wav")
        code, out, err = cli("synth", "--models", shared_voice_root(), *args)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert "give --lang and --gender" in err and "hindi/female, hindi/male" in err
        assert not (tmp_path / "x.wav").exists() and not (tmp_path / "out").exists()


def test_the_one_voice_that_fits_a_given_gender_is_taken(cli, tmp_path):
    code, _, err = cli("synth", "--models", shared_voice_root(), "--gender", "female", "--text", TEXT,
                       "-o", tmp_path / "x.wav")
    assert code == 0, err
    assert f"hindi/female from {shared_voice_root()}" in err
    code, _, err = cli("synth", "--models", shared_voice_root(), "--lang", "tamil", "--text", TEXT,
                       "-o", tmp_path / "y.wav")
    assert code == 2 and err.count("\n") == 1
    assert "--lang tamil" in err and "hindi/female, hindi/male" in err


def test_without_models_the_first_root_in_the_usual_order_decides(cli, tmp_path, monkeypatch):
    """$LAVANYA_MODELS with several voices is not skipped for the one-voice demo behind it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LAVANYA_MODELS", str(shared_voice_root()))
    code, _, err = cli("synth", "--text", TEXT, "-o", tmp_path / "x.wav")
    assert code == 2 and "hindi/female, hindi/male" in err and str(shared_voice_root()) in err
    monkeypatch.setenv("LAVANYA_MODELS", str(_one_voice_root(tmp_path)))
    code, _, err = cli("synth", "--text", TEXT, "-o", tmp_path / "x.wav")
    assert code == 0, err
    assert f"hindi/male from {tmp_path / 'one'}" in err and "bundled" not in err
