"""Mistakes in a batch's job file and options, in one process and on Ray: every invalid line named
in one run, a job's own ``id``, a text too long for one job, a results file that is an input, and
temporary files that killed writers left behind."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from lavanya_cli.errors import LavanyaError
from lavanya_cli.limits import TEXT_MAX_BYTES
from lavanya_cli.batch.jobs import INVALID_LINES_SHOWN, Job, jobs_from_jsonl
from synthkit import shared_voice_root

SENTENCE = "नमस्ते।"


def _write_jsonl(path: Path, entries: list) -> Path:
    path.write_text("".join((entry if isinstance(entry, str) else json.dumps(entry, ensure_ascii=False)) + "\n"
                            for entry in entries), encoding="utf-8")
    return path


def test_every_invalid_line_is_named_in_one_run(cli, tmp_path):
    entries = [{"text": SENTENCE, "output": "ok.wav"}]
    entries += [{"text": SENTENCE, "output": f"o{n}.wav", "colour": "red"} for n in range(12)]
    entries += ["{not json"] * 10 + [{"text": SENTENCE}] * 3
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", entries)
    code, out, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", tmp_path / "out",
                         "--lang", "hindi", "--gender", "male")
    lines = err.splitlines()
    assert code == 2 and out == ""
    assert lines[0] == f"lavanya: error: {jobs}: 25 invalid lines; nothing was spoken"
    assert lines[1] == f"lavanya: error: {jobs}:2: unknown field 'colour' (fields: id, text, output, lang, gender, alpha)"
    assert len(lines) == 1 + INVALID_LINES_SHOWN + 1
    assert lines[-1] == f"lavanya: error: ... and 5 more invalid lines in {jobs}"
    assert f"{jobs}:14: not JSON" in err and f"{jobs}:21: not JSON" in err
    assert not (tmp_path / "out" / "ok.wav").exists()


def test_one_invalid_line_is_one_line():
    with pytest.raises(LavanyaError) as raised:
        jobs_from_jsonl('{"text": "a", "output": "a.wav"}\n{"text": 1, "output": "b.wav"}\n', "j.jsonl", Path(),
                        "hindi", "male", None)
    assert raised.value.message == 'j.jsonl:2: needs "text" and "output" strings' and raised.value.details == ()


def test_every_job_that_cannot_be_spoken_is_named(cli, tmp_path):
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", [
        {"text": "नमस्ते <sil=abc>", "output": "a.wav"},
        {"text": SENTENCE, "output": "b.wav"},
        {"text": "<alpha=99> नमस्ते", "output": "c.wav"},
    ])
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", tmp_path / "out",
                       "--lang", "hindi", "--gender", "male")
    lines = err.splitlines()
    assert code == 2 and len(lines) == 3, err
    assert lines[0] == f"lavanya: error: {jobs}: 2 jobs that cannot be spoken; nothing was spoken"
    assert lines[1].startswith(f"lavanya: error: {jobs}:1 (") and lines[2].startswith(f"lavanya: error: {jobs}:3 (")


def test_a_jobs_own_id_is_carried_into_the_results(cli, tmp_path):
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", [
        {"id": "greeting-1", "text": SENTENCE, "output": "a.wav"},
        {"text": SENTENCE, "output": "b.wav"},
    ])
    code, out, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", tmp_path / "out",
                         "--lang", "hindi", "--gender", "male", "--format", "json")
    assert code == 0, err
    outputs = json.loads(out)["outputs"]
    assert outputs[0]["id"] == "greeting-1" and "id" not in outputs[1]


@pytest.mark.parametrize("value, message", [
    (7, '"id" must be a string of 1 to 200 characters'),
    ("", '"id" must be a string of 1 to 200 characters'),
    ("x" * 201, '"id" must be a string of 1 to 200 characters'),
])
def test_an_id_that_is_not_a_short_string_is_refused(value, message):
    with pytest.raises(LavanyaError, match=message):
        jobs_from_jsonl(json.dumps({"id": value, "text": "a", "output": "a.wav"}), "j.jsonl", Path(), "hindi", "male",
                        None)


def test_two_jobs_with_one_id_are_refused():
    text = "".join(json.dumps({"id": "same", "text": "a", "output": f"{n}.wav"}) + "\n" for n in range(2))
    with pytest.raises(LavanyaError, match=r"j.jsonl:2: id 'same' is already the id of j.jsonl:1"):
        jobs_from_jsonl(text, "j.jsonl", Path(), "hindi", "male", None)


def test_a_text_too_long_for_one_job_is_refused_before_any_work(cli, tmp_path):
    long_text = "क" * (TEXT_MAX_BYTES // 3 + 1)  # three bytes each in UTF-8
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", [{"text": long_text, "output": "a.wav"}])
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", tmp_path / "out",
                       "--lang", "hindi", "--gender", "male", "--max-input", "4M")
    assert code == 2
    assert err.strip() == (f"lavanya: error: {jobs}:1: 1,048,578 bytes of text in one job, more than the 1,048,576 "
                           "(1 MiB, about six hours of speech) one text may hold; split it into several jobs")
    with pytest.raises(LavanyaError, match="the text: .* one text may hold"):
        Job(long_text, "a.wav", "hindi", "male")


def test_a_single_process_batch_removes_what_killed_writers_left(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a.wav.u_mcj9e9.tmp"
    others = [out / ".notes.txt.u_mcj9e9.tmp", out / ".a.wav.tmp", out / "a.wav.u_mcj9e9.tmp"]
    for path in [stale, *others]:
        path.write_bytes(b"RIFF")
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", [{"text": SENTENCE, "output": "a.wav"}])
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", out,
                       "--lang", "hindi", "--gender", "male")
    assert code == 0, err
    assert not stale.exists() and all(path.exists() for path in others)


def test_a_results_file_that_is_the_job_file_is_refused(cli, tmp_path):
    pytest.importorskip("ray", reason="the ray extra (lavanya[ray]) is not installed")
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", [{"text": SENTENCE, "output": "a.wav"}])
    before = jobs.read_bytes()
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--manifest", jobs,
                       "--output-dir", tmp_path / "out", "--lang", "hindi", "--gender", "male", "--ray", "local")
    assert code == 2 and "the results manifest would overwrite the job file" in err
    assert jobs.read_bytes() == before and not (tmp_path / "out").exists()
    # the default manifest in the output directory, when the job file is there under that name
    out = tmp_path / "wavs"
    out.mkdir()
    inside = _write_jsonl(out / "lavanya-results.jsonl", [{"text": SENTENCE, "output": "a.wav"}])
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", inside, "--output-dir", out,
                       "--lang", "hindi", "--gender", "male", "--ray", "local")
    assert code == 2 and "would overwrite the job file" in err
    # a hard link to it, and standard output
    linked = tmp_path / "linked.jsonl"
    os.link(jobs, linked)
    for manifest, message in ((linked, "would overwrite the job file"), ("-", "the results manifest is a file")):
        code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--manifest", manifest,
                           "--output-dir", tmp_path / "out", "--lang", "hindi", "--gender", "male", "--ray", "local")
        assert code == 2 and message in err, err
    assert jobs.read_bytes() == before and not (tmp_path / "out").exists() and not (tmp_path / "-").exists()


def test_one_text_over_the_limit_is_told_to_split_not_to_raise_the_input_limit(cli, tmp_path):
    big = tmp_path / "big.txt"
    big.write_text("क" * (TEXT_MAX_BYTES // 3 + 1), encoding="utf-8")
    code, _, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                       "--input", big, "-o", tmp_path / "a.wav", "--max-input", "8M")
    assert code == 2 and "one text may hold" in err and "split it" in err and "--max-input" not in err
    lines = tmp_path / "lines.txt"
    lines.write_text("नमस्ते\n" + "क" * (TEXT_MAX_BYTES // 3 + 1) + "\nनमस्ते\n" + "ख" * (TEXT_MAX_BYTES // 3 + 1) + "\n",
                     encoding="utf-8")
    code, _, err = cli("synth", "--models", shared_voice_root(), "--lang", "hindi", "--gender", "male",
                       "--lines", lines, "--output-dir", tmp_path / "out", "--max-input", "8M")
    assert code == 2 and err.splitlines()[0] == f"lavanya: error: {lines}: 2 invalid lines; nothing was spoken"
    assert f"{lines}:2:" in err and f"{lines}:4:" in err


def test_a_lone_surrogate_is_an_invalid_line_and_a_line_separator_inside_a_string_is_not_a_line(cli, tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text('{"text": "a\u2028b\u0085c", "output": "a.wav"}\r\n'
                    '{"text": "\\ud800", "output": "b.wav"}\n{"id": "\\udc80", "text": "x", "output": "c.wav"}\n',
                    encoding="utf-8")
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", tmp_path / "out",
                       "--lang", "hindi", "--gender", "male")
    lines = err.splitlines()
    assert code == 2 and lines[0] == f"lavanya: error: {jobs}: 2 invalid lines; nothing was spoken", err
    assert lines[1].startswith(f'lavanya: error: {jobs}:2: "text" holds a lone surrogate')
    assert lines[2].startswith(f'lavanya: error: {jobs}:3: "id" holds a lone surrogate')
    assert "Traceback" not in err and "internal error" not in err


def test_an_output_directory_is_never_made_world_writable(cli, tmp_path):
    from lavanya_cli.fileio import make_directories

    old = os.umask(0)
    try:
        make_directories(tmp_path / "a" / "b" / "c")
        jobs = _write_jsonl(tmp_path / "jobs.jsonl", [{"text": SENTENCE, "output": "x.wav"}])
        code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir",
                           tmp_path / "made" / "here", "--lang", "hindi", "--gender", "male")
    finally:
        os.umask(old)
    assert code == 0, err
    for directory in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c", tmp_path / "made",
                      tmp_path / "made" / "here"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory


def test_a_live_writers_temporary_is_kept_and_a_dead_ones_removed(tmp_path):
    from lavanya_cli.fileio import remove_stale_temporaries, replacing

    target = tmp_path / "a.wav"
    with replacing(target) as handle:  # another batch, still writing
        handle.write(b"RIFF")
        [live] = [path for path in tmp_path.iterdir() if path.name.endswith(".tmp")]
        assert remove_stale_temporaries([target]) == 0 and live.exists()
    dead = tmp_path / ".a.wav.abcd1234.tmp"  # a writer killed: no lock held
    dead.write_bytes(b"RIFF")
    assert remove_stale_temporaries([target]) == 1 and not dead.exists() and target.read_bytes() == b"RIFF"
