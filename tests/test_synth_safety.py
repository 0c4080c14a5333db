"""A hostile path, file or number must never hurt the machine: ``synth`` and ``text`` on the tiny
random-weight voices (see synthkit), one test per class of input.

Each refusal is checked for its exit code, its one line, that nothing outside the output
changed, and, where it matters, that it came before any voice was loaded.
"""

from __future__ import annotations

import gc
import io
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import soundfile
import torch

from lavanya_cli.errors import EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, LavanyaError
from lavanya_cli.limits import INPUT_LIMIT_ENV, TEXT_SILENCE_MAX_SECONDS, available_cpus
from _helpers import TouchesMarker, snapshot, synth
from synthkit import shared_voice, shared_voice_root

REPO = Path(__file__).resolve().parents[1]
TEXT = "नमस्ते, आप कैसे हैं? ठीक है।"


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a voice is loaded: the refusal must come before any weights are read."""
    from lavanya_cli.speech.voice import Voice

    def refuse(cls, *args, **kwargs):
        pytest.fail("a voice was loaded before the refusal")

    monkeypatch.setattr(Voice, "load", classmethod(refuse))


def _one_line(err: str, *fragments: str) -> None:
    assert err.count("\n") == 1 and err.startswith("lavanya: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# -- outputs: only regular files or new paths, never world-writable ----------------------


def _device_node(path: Path) -> Path:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except (PermissionError, OSError):
        pytest.skip("this test may not make device nodes here")
    return path


@pytest.mark.parametrize("kind", ["fifo", "directory", "device", "symlink to a fifo"])
def test_an_output_that_is_not_a_regular_file_is_refused_before_loading(cli, tmp_path, no_loading, kind):
    target = tmp_path / "out.wav"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "device":
        _device_node(target)
    else:
        os.mkfifo(tmp_path / "pipe")
        target.symlink_to(tmp_path / "pipe")
    before = snapshot(tmp_path)
    code, out, err = synth(cli, "--text", TEXT, "-o", target)
    assert code == EXIT_USAGE and out == ""
    _one_line(err, str(target), "lavanya writes only regular files")
    assert snapshot(tmp_path) == before  # the node is still there, untouched, and no temporary file


def test_plot_is_an_output_like_the_wav(cli, tmp_path, no_loading):
    os.mkfifo(tmp_path / "mel.png")
    code, _, err = synth(cli, "--text", TEXT, "-o", tmp_path / "a.wav", "--plot", tmp_path / "mel.png")
    assert code == EXIT_USAGE
    _one_line(err, "mel.png", "FIFO")
    code, _, err = synth(cli, "--text", TEXT, "-o", tmp_path / "a.wav", "--plot", tmp_path / "a.wav")
    assert code == EXIT_USAGE
    _one_line(err, "the same file as the output of -o")


@pytest.mark.parametrize("where, problem", [
    ("missing/x.wav", "does not exist"),
    ("file.txt/x.wav", "is not a directory"),
])
def test_an_output_that_cannot_be_written_fails_before_loading(cli, tmp_path, no_loading, where, problem):
    (tmp_path / "file.txt").write_text("keep")
    before = snapshot(tmp_path)
    code, _, err = synth(cli, "--text", TEXT, "-o", tmp_path / where)
    assert code == EXIT_USAGE
    _one_line(err, where, problem)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_a_new_wav_gets_0644_less_the_umask(cli, tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        assert synth(cli, "--text", "नमस्ते", "-o", tmp_path / "new.wav")[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.wav").st_mode) == expected


def test_a_writable_target_or_link_never_yields_a_world_writable_wav(cli, tmp_path):
    open_file = tmp_path / "open.wav"
    open_file.write_bytes(b"old")
    os.chmod(open_file, 0o666)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    linked = elsewhere / "target.wav"
    linked.write_bytes(b"not mine")
    os.chmod(linked, 0o777)
    (tmp_path / "link.wav").symlink_to(linked)
    for target in (open_file, tmp_path / "link.wav"):
        assert synth(cli, "--text", "नमस्ते", "-o", target)[0] == 0
        info = os.lstat(target)
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & 0o022 == 0
        assert soundfile.info(target).frames > 0
    # the link itself was replaced; the file it pointed to, outside the output, is untouched
    assert linked.read_bytes() == b"not mine" and stat.S_IMODE(os.stat(linked).st_mode) == 0o777


# -- batch outputs: inside --output-dir, unique, stdout once, all checked first ---------------


def _jsonl(path: Path, *entries: dict) -> Path:
    path.write_text("".join(json.dumps({"text": "नमस्ते।", **entry}, ensure_ascii=False) + "\n"
                            for entry in entries), encoding="utf-8")
    return path


@pytest.mark.parametrize("outputs, line, message", [
    (["a.wav", "../escape.wav"], 2, "relative path inside the output directory"),
    (["a.wav", "/tmp/lavanya-absolute.wav"], 2, "relative path inside the output directory"),
    (["sub/../../escape.wav"], 1, "no '..'"),
    (["config.yaml"], 1, "must be a .wav file"),
    (["a.wav", "b.wav", "a.wav"], 3, "the same file as the output of"),
    (["a.wav", "./a.wav"], 2, "the same file as the output of"),
    (["-", "-"], 2, "one WAV at most can go there"),
    (["linked/x.wav"], 1, "leads outside the output directory"),
])
def test_batch_outputs_stay_inside_the_output_directory_and_apart(cli, tmp_path, no_loading, outputs, line, message):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "outside").mkdir()
    (out / "linked").symlink_to(tmp_path / "outside")
    jobs = _jsonl(tmp_path / "jobs.jsonl", *({"output": output} for output in outputs))
    before = snapshot(tmp_path)
    code, out_text, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                              "--jsonl", jobs, "--output-dir", out)
    assert code == EXIT_USAGE and out_text == ""
    _one_line(err, f"jobs.jsonl:{line}", message)
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/lavanya-absolute.wav").exists()


def test_stdout_in_a_batch_with_a_json_summary_is_refused(cli, tmp_path, no_loading):
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"output": "-"})
    code, out, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                         "--jsonl", jobs, "--output-dir", tmp_path, "--format", "json")
    assert code == EXIT_USAGE and out == ""
    _one_line(err, "jobs.jsonl:1", "--format json")
    code, out, err = synth(cli, "--text", TEXT, "-o", "-", "--format", "json")
    assert code == EXIT_USAGE and out == ""
    _one_line(err, "-o: - puts the WAV on standard output")


def test_without_output_dir_jsonl_writes_into_the_current_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"output": "here.wav"}, {"output": "../up.wav"})
    code, _, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                       "--jsonl", jobs)
    _one_line(err, "jobs.jsonl:2", "relative path inside the output directory")
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"output": "here.wav"})
    code, _, _ = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male", "--jsonl", jobs)
    assert code == 0 and soundfile.info(tmp_path / "here.wav").frames > 0
    assert not (tmp_path.parent / "up.wav").exists()


def test_no_output_inside_the_model_root_in_use(cli, tmp_path):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    config = root / "hindi" / "male" / "model" / "config.yaml"
    before = snapshot(root)
    code, _, err = cli("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--text", TEXT, "-o", config)
    assert code == EXIT_USAGE
    _one_line(err, str(config), "inside the model root")
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"output": "hindi/male/model/config.wav"})
    for output_dir in (root, root / "new" / "wavs"):  # the latter is never created
        code, _, err = cli("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--jsonl", jobs,
                           "--output-dir", output_dir)
        assert code == EXIT_USAGE
        _one_line(err, "inside the model root")
    assert snapshot(root) == before


def test_a_job_that_cannot_be_written_is_named_and_the_summary_keeps_what_was_written(cli, tmp_path, monkeypatch):
    """The disk fills up during job 2 of 3: job 1's WAV stays, job 2 leaves nothing behind."""
    real_fsync, calls = os.fsync, []

    def full_disk_on_the_second_file(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk_on_the_second_file)
    jobs = _jsonl(tmp_path / "jobs.jsonl", {"output": "one.wav"}, {"output": "two.wav"}, {"output": "three.wav"})
    code, out, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                         "--jsonl", jobs, "--output-dir", tmp_path / "out", "--format", "json")
    assert code == EXIT_USAGE
    _one_line(err, "jobs.jsonl:2", "two.wav", "No space left on device")
    summary = json.loads(out)
    assert [Path(result["output"]).name for result in summary["outputs"]] == ["one.wav"]
    assert "jobs.jsonl:2" in summary["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.wav"]


# -- interrupts: one line, the conventional code, no temporary file -----------------------


@pytest.mark.slow  # subprocesses
@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGTERM, EXIT_TERMINATED, "lavanya: error: terminated (SIGTERM)\n"),
    (signal.SIGINT, EXIT_INTERRUPTED, "lavanya: error: interrupted (SIGINT)\n"),
])
def test_a_signal_mid_synthesis_removes_the_temporary_file(tmp_path, signum, code, line):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "long.txt").write_text("नमस्ते, आप कैसे हैं।\n" * 4000, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models", shared_voice_root(),
         "--lang", "hindi", "--gender", "male", "--input", tmp_path / "long.txt", "-o", out / "long.wav"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob(".long.wav.*.tmp")):  # synthesis has started writing
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == code
    assert stderr.decode() == line and stdout == b""
    assert list(out.iterdir()) == []


# -- bounded input: kinds and sizes ---------------------------------------------------------


def test_text_from_a_device_is_refused(cli, tmp_path):
    for command in ("text", "synth"):
        code, _, err = cli(command, "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                           "--input", "/dev/zero", *(["-o", tmp_path / "x.wav"] if command == "synth" else []))
        assert code == EXIT_USAGE
        _one_line(err, "/dev/zero", "character device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a megabyte of text through the front end, three times
def test_input_over_the_limit_is_refused_and_the_limit_can_be_raised(cli, tmp_path, monkeypatch, no_loading):
    big = tmp_path / "big.txt"
    big.write_text("नमस्ते। " * 60_000, encoding="utf-8")  # about 1.2 MB
    args = ("--models", shared_voice_root(), "--lang", "hindi", "--gender", "male")
    code, _, err = cli("text", *args, "--input", big)
    assert code == EXIT_USAGE
    _one_line(err, "big.txt", "1 MiB", "--max-input", INPUT_LIMIT_ENV)
    code, out, _ = cli("text", *args, "--input", big, "--max-input", "2M")
    assert code == 0 and out.count("\n") == 60_000
    monkeypatch.setenv(INPUT_LIMIT_ENV, "2M")
    assert cli("text", *args, "--input", big)[0] == 0
    code, _, err = cli("text", *args, "--input", big, "--max-input", "1G")
    _one_line(err, "--max-input must be a number from 1 to")
    monkeypatch.setenv(INPUT_LIMIT_ENV, "64K")
    monkeypatch.setattr(sys, "stdin", io.StringIO("नमस्ते। " * 10_000))
    code, _, err = cli("text", *args)
    _one_line(err, "standard input", "64 KiB")
    jobs = _jsonl(tmp_path / "jobs.jsonl", *({"output": f"{n}.wav"} for n in range(2000)))
    code, _, err = cli("synth", *args, "--jsonl", jobs, "--output-dir", tmp_path / "out")
    _one_line(err, "jobs.jsonl", "64 KiB")


def test_an_endless_pipe_is_read_only_up_to_the_limit(tmp_path):
    """``yes | lavanya text`` would fill memory if the read were not bounded; it ends at once."""
    endless = subprocess.Popen(["yes", "नमस्ते"], stdout=subprocess.PIPE)
    try:
        result = subprocess.run(
            [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "text", "--lang", "hindi",
             "--gender", "male", "--max-input", "256K"],
            stdin=endless.stdout, capture_output=True, cwd=tmp_path, timeout=120,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        endless.kill()
        endless.wait()
    assert result.returncode == EXIT_USAGE
    assert result.stderr.decode().startswith("lavanya: error: standard input: the text is more than the input "
                                             "limit of 256 KiB")


@pytest.mark.slow  # a long text synthesized
def test_audio_is_streamed_to_the_file_and_no_chunk_is_kept(cli, tmp_path, monkeypatch):
    """Memory stays flat with text length: each sentence's audio is written and dropped."""
    from lavanya_cli.speech.voice import Voice

    real_render, chunks, alive = Voice.render, [], []

    def watching(self, plan):
        for chunk in real_render(self, plan):
            chunks.append(weakref.ref(chunk))
            yield chunk
            gc.collect()
            alive.append(sum(ref() is not None for ref in chunks[:-1]))

    monkeypatch.setattr(Voice, "render", watching)
    text = "नमस्ते। <sil=200ms> आप कैसे हैं? ठीक है। चलो।"
    assert synth(cli, "--text", text, "-o", tmp_path / "s.wav", "--plot", tmp_path / "s.png")[0] == 0
    assert len(chunks) == 5 and alive == [0] * 5  # every earlier chunk was gone while the next was made
    frames = soundfile.info(tmp_path / "s.wav").frames
    assert (tmp_path / "s.wav").stat().st_size == 44 + 2 * frames  # the header's sizes were fixed at the end


# -- numbers: one check for options, tags and JSONL fields ------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--alpha", "0"], "--alpha must be a number from 0.25 to 4"),
    (["--alpha", "-1"], "--alpha must be"),
    (["--alpha", "nan"], "not nan"),
    (["--alpha", "inf"], "not inf"),
    (["--alpha", "1e-9"], "--alpha must be"),
    (["--alpha", "1e9"], "--alpha must be"),
    (["--sentence-silence", "nan"], "--sentence-silence must be a number from 0 to 60 s"),
    (["--sentence-silence", "inf"], "--sentence-silence must be"),
    (["--sentence-silence", "-1"], "--sentence-silence must be"),
    (["--sentence-silence", "100000"], "--sentence-silence must be"),
    (["--threads", "0"], "--threads must be 1 or more"),
    (["--device", "cpu:1"], "the CPU takes no index"),
    (["--device", "tpu"], "use --device cpu, cuda or cuda:N"),
    (["--device", "cuda:64"], "--device cuda:64"),
])
def test_option_numbers_and_devices_are_checked_before_loading(cli, tmp_path, no_loading, args, message):
    code, _, err = synth(cli, "--text", TEXT, "-o", tmp_path / "x.wav", *args)
    assert code == EXIT_USAGE
    _one_line(err, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text, message", [
    ("नमस्ते <alpha=0> आप", "tag <alpha=0>: alpha must be a number from 0.25 to 4"),
    ("नमस्ते <alpha=1000000000> आप", "tag <alpha=1000000000>"),
    ("नमस्ते <sil=100000s> आप", "tag <sil=100000s>: a pause must be a number from 0 to 60 s"),
    ("नमस्ते <sil=1s आप", "malformed tag '<sil=1s आप': it has no closing '>'"),
    ("<alpha=<sil=1s>> नमस्ते", "malformed tag '<alpha='"),
    ("नमस्ते " + "<sil=60s> आप " * 31, f"more than {TEXT_SILENCE_MAX_SECONDS:g} s of pauses"),
])
def test_tag_numbers_and_broken_tags_are_refused_before_loading(cli, tmp_path, no_loading, text, message):
    code, _, err = synth(cli, "--text", text, "-o", tmp_path / "x.wav")
    assert code == EXIT_USAGE
    _one_line(err, message)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("alpha, shown", [
    ("1e400", "not inf"), ("1e9", "not 1000000000.0"), ("1e-9", "not 1e-09"), ("0", "not 0"),
    ("1" + "0" * 400, "not 1000"), ('"2"', "not 2"), ("true", "not True"), ("null", None),
])
def test_jsonl_numbers_get_the_same_check(cli, tmp_path, no_loading, alpha, shown):
    (tmp_path / "jobs.jsonl").write_text(f'{{"text": "नमस्ते", "output": "a.wav", "alpha": {alpha}}}\n',
                                         encoding="utf-8")
    if shown is None:  # null: the default rate; the check passes and loading is reached
        with pytest.raises(pytest.fail.Exception, match="loaded"):
            synth(cli, "--jsonl", tmp_path / "jobs.jsonl", "--output-dir", tmp_path / "out")
        return
    code, _, err = synth(cli, "--jsonl", tmp_path / "jobs.jsonl", "--output-dir", tmp_path / "out")
    assert code == EXIT_USAGE
    _one_line(err, 'jobs.jsonl:1: "alpha" must be a number from 0.25 to 4', shown)


def test_too_many_threads_are_lowered_to_the_cpus_there_are(cli, tmp_path):
    before = torch.get_num_threads()
    try:
        code, _, err = synth(cli, "--text", "नमस्ते", "-o", tmp_path / "x.wav", "--threads", "1000")
        assert code == 0
        assert torch.get_num_threads() == available_cpus()
    finally:
        torch.set_num_threads(before)
    assert err.splitlines()[0] == (f"lavanya: warning: --threads 1000 is more than the {available_cpus()} CPU(s) "
                                   f"available here; using {available_cpus()}")


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_a_sentence_expanding_past_the_frame_cap_is_refused_before_the_expansion(monkeypatch, engine):
    from lavanya_cli import limits

    voice = shared_voice(engine)
    monkeypatch.setattr(limits, "SENTENCE_FRAMES_MAX", 20)
    with pytest.raises(LavanyaError, match=r"predicts \d+ frames for one sentence, more than the 20"):
        voice.speak("$namastE.", alpha=4.0)
    monkeypatch.setattr(limits, "SENTENCE_FRAMES_MAX", 10_000)
    assert voice.speak("$namastE.", alpha=4.0).seconds > 0


def test_one_text_makes_at_most_the_audio_cap(cli, tmp_path, monkeypatch):
    from lavanya_cli.speech import voice as voice_module

    monkeypatch.setattr(voice_module, "TEXT_AUDIO_MAX_SECONDS", 1.0)
    code, _, err = synth(cli, "--text", "नमस्ते। " * 10, "-o", tmp_path / "x.wav")
    assert code == EXIT_USAGE
    _one_line(err, "more than 0.000277778 hours of audio")
    assert list(tmp_path.iterdir()) == []  # the temporary file went too


# -- errors that are true ------------------------------------------------------------------


@pytest.mark.parametrize("victim, what", [
    ("hindi/male/model/model.pth", "the acoustic model"),
    ("vocoder/male/aryan/hifigan/generator", "the HiFi-GAN generator"),
])
def test_a_weights_file_with_code_is_refused_in_one_true_line(cli, tmp_path, victim, what):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    marker = tmp_path / "code-ran"
    with open(root / victim, "wb") as handle:
        pickle.dump({"generator": TouchesMarker(marker)}, handle, protocol=2)
    code, _, err = cli("synth", "--models", root, "--lang", "hindi", "--gender", "male", "--text", TEXT,
                       "-o", tmp_path / "x.wav")
    assert code == EXIT_USAGE
    _one_line(err, str(root / victim), f"refused: {what} is a pickle", "restore the voice's released weights")
    assert "weights_only" not in err and "Re-running" not in err
    assert not marker.exists() and not (tmp_path / "x.wav").exists()


def test_resources_that_are_not_regular_files_are_one_line_never_a_hang(cli, tmp_path):
    root = shutil.copytree(shared_voice_root(), tmp_path / "root")
    args = ("--models", root, "--lang", "hindi", "--gender", "male")
    (root / "phone_dict").mkdir(exist_ok=True)
    os.mkfifo(root / "phone_dict" / "hindi")
    code, _, err = cli("text", *args, "नमस्ते")
    assert code == EXIT_USAGE
    _one_line(err, "phone_dict/hindi", "FIFO")
    (root / "phone_dict" / "hindi").unlink()
    (root / "multilingualcharmap.json").symlink_to("/dev/zero")
    code, _, err = cli("text", *args, "ऩ")  # a character outside the tokens needs the map
    _one_line(err, "multilingualcharmap.json", "is a symlink to /dev/zero, outside the model root")
    (root / "multilingualcharmap.json").unlink()
    os.mkfifo(root / "multilingualcharmap.json")
    code, _, err = cli("text", *args, "ऩ")
    _one_line(err, "multilingualcharmap.json", "FIFO")
    (root / "multilingualcharmap.json").unlink()
    os.mkfifo(root / "hindi" / "male" / "model" / "lavanya.yaml")
    code, _, err = cli("synth", *args, "--text", "नमस्ते", "-o", tmp_path / "x.wav")
    _one_line(err, "lavanya.yaml", "FIFO")
    (root / "hindi" / "male" / "model" / "lavanya.yaml").unlink()
    vocoder_config = root / "vocoder" / "male" / "aryan" / "hifigan" / "config.json"
    vocoder_config.write_text(vocoder_config.read_text() + " " * (2 << 20))
    code, _, err = cli("synth", *args, "--text", "नमस्ते", "-o", tmp_path / "x.wav")
    _one_line(err, "config.json", "larger than 1 MiB")


def test_a_word_spoken_without_a_letter_is_reported_as_such(shared_tree):
    """Tamil's avagraha has no token in the tamil voices: the word is spoken without it, and the
    report says so rather than claiming the word was not pronounced."""
    from lavanya_cli.frontend import Frontend
    from lavanya_cli.modeltree.config import read_config
    from lavanya_cli.modeltree.layout import find_voice

    voice = find_voice("tamil", "male", None, shared_tree / "main")
    prepared = Frontend.for_voice(voice, read_config(voice.config_path)).prepare("அம஽ம")
    assert prepared.model_input == "$amama."
    assert prepared.unpronounced == [] and prepared.incomplete == ["அம஽ம"]
    assert prepared.problems == ["அம஽ம: spoken without ऽ (U+093D): not among the voice's tokens"]


@pytest.mark.slow  # a subprocess
def test_a_reader_that_goes_away_is_one_line(tmp_path):
    """``lavanya synth -o - | head -c 100``: the closed pipe is named, nothing else is printed."""
    process = subprocess.Popen(
        [sys.executable, "-c", "from lavanya_cli.cli import run; run()", "synth", "--models", shared_voice_root(),
         "--lang", "hindi", "--gender", "male", "--text", "नमस्ते, आप कैसे हैं। " * 50, "-o", "-"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout.read(100)[:4] == b"RIFF"
    process.stdout.close()
    stderr = process.communicate(timeout=240)[1].decode()
    assert process.returncode == EXIT_USAGE
    assert stderr == "lavanya: error: standard output was closed before the WAV was complete\n"
