"""Batch synthesis on Ray (``lavanya_cli.batch.ray``) on a private local Ray with 2 CPUs and
the tiny random-weight voices (see synthkit), through the default engine (ONNX Runtime). One Ray
instance serves the whole module."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lavanya_cli.errors import EXIT_OK, EXIT_PROBLEMS, LavanyaError
from lavanya_cli.modeltree.layout import find_voice
from lavanya_cli.batch.jobs import Job, jobs_from_lines
from _helpers import umask
from synthkit import shared_voice_root

pytest.importorskip("ray", reason="the ray extra (lavanya[ray]) is not installed")

from lavanya_cli.cli.output import PlainFormat  # noqa: E402
from lavanya_cli.cli.synth_ray import run_on_ray  # noqa: E402
from lavanya_cli.limits import INPUT_LIMIT_DEFAULT  # noqa: E402
from lavanya_cli.batch.outputs import OutputTarget  # noqa: E402
from lavanya_cli.batch.ray import RaySettings, ray_session, run_batch  # noqa: E402
from lavanya_cli.batch.results import RESULTS_NAME, read_results  # noqa: E402
from lavanya_cli.speech.options import FindOptions, LoadOptions  # noqa: E402

pytestmark = pytest.mark.slow  # a local Ray session per test, and subprocesses

SENTENCES = ["नमस्ते।", "आप कैसे हैं?", "ठीक है, धन्यवाद।", "आज मौसम अच्छा है।"]
RATE = 22050


@pytest.fixture(scope="module")
def local_ray():
    """A private Ray with 2 CPUs, opened the way ``--ray local`` opens it; run_batch joins it."""
    with ray_session(RaySettings(num_cpus=2)) as cpus:
        yield cpus


def _lines_jobs(sentences=SENTENCES) -> list[Job]:
    """``--lines`` jobs as the CLI builds them for Ray: names relative to the output directory."""
    return jobs_from_lines("\n".join(sentences) + "\n", "lines.txt", Path(), "hindi", "male", None)


def _jsonl(tmp_path: Path, entries: list[dict]) -> Path:
    path = tmp_path / "jobs.jsonl"
    path.write_text("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in entries), encoding="utf-8")
    return path


def _manifest_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- on Ray ---------------------------------------------------------------------------------------


def test_ray_local_writes_the_same_bytes_as_one_process(cli, tmp_path, capsys, local_ray):
    jobs = _jsonl(tmp_path, [
        {"text": SENTENCES[0], "output": "m1.wav", "lang": "hindi", "gender": "male"},
        {"text": SENTENCES[1], "output": "f1.wav", "lang": "hindi", "gender": "female"},
        {"text": SENTENCES[2], "output": "m2.wav", "lang": "hindi", "gender": "male", "alpha": 1.5},
        {"text": "नमस्ते। <sil=300ms> " + SENTENCES[3], "output": "f2.wav", "lang": "hindi", "gender": "female"},
    ])
    # The same engine (the default, ONNX Runtime) and one thread, as each actor has by default.
    code, _, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir",
                       tmp_path / "one", "--threads", 1, "--sentence-silence", 0.2, "--engine", "onnx")
    assert code == 0, err
    assert "(onnx engine)" in err

    code = run_on_ray("local", lines=None, jsonl=jobs, output_dir=str(tmp_path / "ray"), lang=None, gender=None,
                      alpha=None, find=FindOptions(models=shared_voice_root()), options=LoadOptions(),
                      sentence_silence=0.2, limit=INPUT_LIMIT_DEFAULT,
                      format=PlainFormat.json)
    summary = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK and summary["done"] == 4 and summary["failed"] == 0
    assert summary["actors"] == 2 and summary["threads_per_actor"] == 1 and summary["cluster_cpus"] == 2
    # On Ray auto is onnx: the nodes may be other machines than the one a measurement was made on.
    assert summary["engine"] == "onnx" and {voice["engine"] for voice in summary["voices"]} == {"onnx"}

    names = ["f1.wav", "f2.wav", "m1.wav", "m2.wav"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == names
    for name in names:
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
    entries = {entry["output"]: entry for entry in _manifest_lines(tmp_path / "ray" / RESULTS_NAME)}
    assert sorted(entries) == names
    for name, entry in entries.items():
        wav = tmp_path / "ray" / name
        assert entry["error"] is None and entry["sha256"] == _sha256(wav)
        assert entry["audio_seconds"] == pytest.approx((wav.stat().st_size - 44) / 2 / RATE, abs=1e-3)
        assert entry["voice"] == f"hindi/{'male' if name.startswith('m') else 'female'}"
    assert {entry["id"] for entry in entries.values()} == {1, 2, 3, 4}
    assert entries["f2.wav"]["sentences"] == 2


def test_a_second_run_redoes_only_what_is_missing_damaged_or_changed(tmp_path, local_ray):
    out, find = tmp_path / "out", FindOptions(models=shared_voice_root())
    sentences = [*SENTENCES, "यह वाक्य बदल जाएगा।"]
    first = run_batch(_lines_jobs(sentences), str(out), find=find)
    assert (first.done, first.already_done) == (5, 0)
    manifest = out / RESULTS_NAME
    recorded = {entry["output"]: entry["sha256"] for entry in _manifest_lines(manifest)}

    # An interrupted run: one WAV gone, one damaged, the manifest cut mid-line before 0004's entry;
    # and the text of line 5 changed since.
    (out / "0002.wav").unlink()
    damaged = bytearray((out / "0003.wav").read_bytes())
    damaged[-1] ^= 0xFF
    (out / "0003.wav").write_bytes(bytes(damaged))
    kept_lines = [line for line in manifest.read_text(encoding="utf-8").splitlines()
                  if json.loads(line)["output"] != "0004.wav"]
    manifest.write_text("\n".join(kept_lines) + "\n" + '{"id": 4, "output": "0004.wa', encoding="utf-8")
    untouched = (out / "0001.wav").stat()
    sentences[4] = "यह वाक्य बदल गया है।"

    second = run_batch(_lines_jobs(sentences), str(out), find=find)
    assert (second.already_done, second.done, len(second.failed)) == (1, 4, 0)
    assert [result["output"] for result in second.results] == ["0002.wav", "0003.wav", "0004.wav", "0005.wav"]
    after = (out / "0001.wav").stat()
    assert (after.st_ino, after.st_mtime_ns) == (untouched.st_ino, untouched.st_mtime_ns)
    entries = {entry["output"]: entry for entry in _manifest_lines(manifest)}
    assert sorted(entries) == [f"000{n}.wav" for n in range(1, 6)]
    for name, entry in entries.items():
        assert entry["sha256"] == _sha256(out / name)
        assert (entry["sha256"] == recorded[name]) == (name != "0005.wav")

    # Everything present and recorded: nothing to do, and no Ray started for it.
    third = run_batch(_lines_jobs(sentences), str(out), find=find)
    assert (third.already_done, third.done, third.actors) == (5, 0, 0)


def test_failing_jobs_are_recorded_and_the_others_are_written(cli, tmp_path, local_ray):
    jobs = _jsonl(tmp_path, [
        {"text": SENTENCES[0], "output": "good1.wav"},
        {"text": SENTENCES[1], "output": "no-voice.wav", "lang": "tamil"},
        {"text": "नमस्ते <sil=fast>", "output": "bad-tag.wav"},
        {"text": "Ω", "output": "nothing-to-say.wav"},
        {"text": SENTENCES[2], "output": "good2.wav", "gender": "female"},
    ])
    out = tmp_path / "out"
    code, stdout, err = cli("synth", "--models", shared_voice_root(), "--jsonl", jobs, "--output-dir", out,
                            "--lang", "hindi", "--gender", "male", "--ray", "local")
    assert code == EXIT_PROBLEMS, err
    assert stdout == ""
    assert sorted(p.name for p in out.glob("*.wav")) == ["good1.wav", "good2.wav"]
    entries = {entry["output"]: entry for entry in _manifest_lines(out / RESULTS_NAME)}
    assert entries["no-voice.wav"]["error"].startswith(f"{jobs}:2 ({out / 'no-voice.wav'}): ")
    assert "tamil" in entries["no-voice.wav"]["error"] and entries["no-voice.wav"]["sha256"] is None
    assert entries["bad-tag.wav"]["error"].startswith(f"{jobs}:3 (")
    assert "malformed tag <sil=fast>" in entries["bad-tag.wav"]["error"]
    # found by the actor (nothing in the text can be spoken), named as the driver names the others
    assert entries["nothing-to-say.wav"]["error"].startswith(f"{jobs}:4 (")
    assert entries["good1.wav"]["error"] is None and entries["good2.wav"]["error"] is None
    assert f"lavanya: failed: {jobs}:2 (" in err and f"lavanya: failed: {jobs}:4 (" in err
    assert "5 jobs: 2 done, 0 already done, 3 failed" in err
    assert "(onnx engine)" in err
    assert not [line for line in err.splitlines() if not line.startswith("lavanya: ")], err


def test_a_uri_output_directory(tmp_path, local_ray):
    out = tmp_path / "by-uri"
    report = run_batch(_lines_jobs(SENTENCES[:2]), out.as_uri(), find=FindOptions(models=shared_voice_root()))
    assert (report.done, len(report.failed)) == (2, 0)
    assert sorted(p.name for p in out.iterdir()) == ["0001.wav", "0002.wav", RESULTS_NAME]
    for entry in _manifest_lines(out / RESULTS_NAME):
        assert entry["sha256"] == _sha256(out / entry["output"])
        assert oct((out / entry["output"]).stat().st_mode & 0o777) == oct(0o644 & ~umask())


def test_a_ray_batch_decides_the_engine_once_through_the_options_object(tmp_path, local_ray, monkeypatch):
    """The driver asks the one resolver, with the options it was given, and the actors load their
    voices with what auto came to (a concrete engine, so no actor decides again)."""
    from lavanya_cli.batch import ray as ray_runner

    asked: list[LoadOptions] = []
    real = ray_runner.resolve_engine
    monkeypatch.setattr(ray_runner, "resolve_engine", lambda options: asked.append(options) or real(options))
    report = run_batch(_lines_jobs(SENTENCES[:1]), str(tmp_path / "out"), find=FindOptions(models=shared_voice_root()),
                       options=LoadOptions(engine="auto", strict=True))
    assert asked == [LoadOptions(engine="auto", strict=True)]
    assert report.engine == "onnx" and report.done == 1
    assert {voice["engine"] for voice in report.voices} == {"onnx"}


def test_an_actor_words_its_errors_as_the_driver_does(tmp_path):
    """A worker is a process of its own: it names flags only where the driver is the command line."""
    from lavanya_cli.batch.ray import SynthesisWorker

    spec = find_voice("hindi", "male", models=shared_voice_root())
    text = "नमस्ते <sil=60s> " * 31 + "नमस्ते"  # 31 minutes of pauses, more than one text may hold
    task = {"id": 1, "name": "a.wav", "output": str(tmp_path / "a.wav"), "where": "job 1", "text": text,
            "lang": "hindi", "gender": "male", "alpha": None, "voice": "hindi/male"}
    for flags, wording in ((True, "--sentence-silence"), (False, "sentence_silence")):
        worker = SynthesisWorker(OutputTarget(str(tmp_path)), {"hindi/male": spec}, LoadOptions(threads=1), 0.0,
                                 flags=flags)
        error = worker.run(task)["error"]
        assert wording in error and (flags or "--" not in error), error


def test_an_actor_speaks_through_onnx_without_importing_torch(tmp_path):
    """What a Ray actor runs, in a fresh process: the voice's export exists (the driver made it),
    so the default engine needs neither torch nor ESPnet."""
    from lavanya_cli.speech.engines import prepare_exports
    from lavanya_cli.speech.voice import find_usable_voice

    spec, _ = find_usable_voice("hindi", "male", FindOptions(models=shared_voice_root()))
    prepare_exports(spec, LoadOptions())
    script = f"""
import sys
from pathlib import Path
from lavanya_cli.batch.outputs import OutputTarget
from lavanya_cli.batch.ray import SynthesisWorker
from lavanya_cli.speech.options import FindOptions, LoadOptions
from lavanya_cli.speech.voice import find_usable_voice
spec, _ = find_usable_voice("hindi", "male", FindOptions(models=Path({str(shared_voice_root())!r})))
worker = SynthesisWorker(OutputTarget({str(tmp_path)!r}), {{"hindi/male": spec}},
                         LoadOptions(engine="onnx", threads=1), 0.0)
result = worker.run({{"id": 1, "name": "a.wav", "output": {str(tmp_path / "a.wav")!r}, "where": "job 1",
                     "text": "नमस्ते।", "lang": "hindi", "gender": "male", "alpha": None, "voice": "hindi/male"}})
assert result["error"] is None, result
heavy = sorted(name for name in ("torch", "espnet2") if name in sys.modules)
assert not heavy, heavy
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "a.wav").stat().st_size > 44


# -- before Ray: names, files and settings --------------------------------------------------------



@pytest.mark.parametrize("output, message", [
    ("../escape.wav", "relative path inside the output directory"),
    ("a/../../escape.wav", "no '..'"),
    ("/elsewhere/x.wav", "relative path inside the output directory"),
    (".", "must be a .wav file"),
    ("-", "standard output"),
])
def test_an_output_outside_the_directory_stops_the_batch_before_it_starts(tmp_path, output, message):
    jobs = [Job(SENTENCES[0], "ok.wav", "hindi", "male"), Job(SENTENCES[1], output, "hindi", "male")]
    with pytest.raises(LavanyaError) as caught:
        run_batch(jobs, str(tmp_path / "out"), find=FindOptions(models=shared_voice_root()))
    assert caught.value.message.startswith("job 2: ") and message in caught.value.message
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.wav").exists()


def test_each_output_once_and_the_manifest_apart(tmp_path):
    jobs = [Job(SENTENCES[0], "x.wav", "hindi", "male"), Job(SENTENCES[1], "./x.wav", "hindi", "male")]
    with pytest.raises(LavanyaError, match="job 2 .*: the same file as the output of job 1"):
        run_batch(jobs, str(tmp_path / "out"), find=FindOptions(models=shared_voice_root()))
    with pytest.raises(LavanyaError, match=r"manifest .*: the same file as the output of job 1"):
        run_batch(jobs[:1], str(tmp_path / "out"), manifest=tmp_path / "out" / "x.wav",
                  find=FindOptions(models=shared_voice_root()))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_symlinked_directory_does_not_carry_a_write_outside(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LavanyaError, match="job 1 .*leads outside the output directory"):
        run_batch([Job(SENTENCES[0], "link/x.wav", "hindi", "male")], str(tmp_path / "out"),
                  find=FindOptions(models=shared_voice_root()))
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_an_output_inside_the_model_root_is_refused(tmp_path):
    with pytest.raises(LavanyaError, match="inside the model root"):
        run_batch(_lines_jobs(SENTENCES[:1]), str(shared_voice_root() / "wavs"),
                  find=FindOptions(models=shared_voice_root()))
    assert not (shared_voice_root() / "wavs").exists()


def test_a_filesystem_without_local_files_gets_a_temporary_name_then_a_move():
    from pyarrow.fs import FileSelector

    target = OutputTarget("mock:///bucket/wavs")
    assert not target.local
    with target.wav("book/ch1.wav", RATE) as wav:
        wav.write(__import__("numpy").array([1, -2, 3], dtype="int16"))
    listing = target.filesystem.get_file_info(FileSelector("bucket", recursive=True))
    assert sorted(info.path for info in listing if info.is_file) == ["bucket/wavs/book/ch1.wav"]
    with target.filesystem.open_input_stream("bucket/wavs/book/ch1.wav") as stream:
        data = stream.read()
    assert len(data) == 44 + 6 and data[40:44] == (6).to_bytes(4, "little")  # the header's exact data size
    assert target.sha256("book/ch1.wav") == hashlib.sha256(data).hexdigest()
    assert target.sha256("book/missing.wav") is None


def test_stale_temporaries_on_a_filesystem_without_local_files():
    from pyarrow.fs import FileSelector

    target = OutputTarget("mock:///bucket/wavs")
    target.filesystem.create_dir("bucket/wavs/book", recursive=True)
    names = ["bucket/wavs/book/.ch1.wav.0123456789abcdef0123456789abcdef.tmp", "bucket/wavs/book/.ch2.wav.x.tmp",
             "bucket/wavs/book/ch1.wav"]
    for name in names:
        with target.filesystem.open_output_stream(name) as stream:
            stream.write(b"RIFF")
    assert target.remove_temporaries(["book/ch1.wav", "book/ch2.wav", "elsewhere/ch3.wav"]) == 1
    listing = target.filesystem.get_file_info(FileSelector("bucket", recursive=True))
    assert sorted(info.path for info in listing if info.is_file) == names[1:]


def test_a_remote_output_directory_needs_a_local_manifest_and_distinct_names(tmp_path):
    jobs = [Job(SENTENCES[0], "a.wav", "hindi", "male")]
    with pytest.raises(LavanyaError, match="give manifest FILE"):
        run_batch(jobs, "mock:///bucket/wavs")
    with pytest.raises(LavanyaError, match="job 2 .*the same file as the output of job 1"):
        run_batch(jobs + [Job(SENTENCES[1], "./a.wav", "hindi", "male")], "mock:///bucket/wavs",
                  manifest=tmp_path / "results.jsonl", find=FindOptions(models=shared_voice_root()))


def test_the_manifest_reader_keeps_the_latest_entry_and_skips_damage(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"output": "a.wav", "sha256": "old"}\nnot json\n["list"]\n' + "[" * 60_000 + "\n"
                    '{"output": "a.wav", "sha256": "new"}\n{"output": "b.wav", "sha256": "cut', encoding="utf-8")
    assert read_results(path) == {"a.wav": {"output": "a.wav", "sha256": "new"}}
    assert read_results(path, {"b.wav"}) == {}
    assert read_results(tmp_path / "absent.jsonl") == {}
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(LavanyaError, match="not a regular file"):
        read_results(tmp_path / "fifo")


@pytest.mark.parametrize("nodes, threads, jobs, expected", [
    ([2], 1, 200, (2, 1)),      # one actor per CPU
    ([16], 4, 200, (4, 4)),     # 4 threads each: 4 actors
    ([8], 1, 3, (3, 1)),        # never more actors than jobs
    ([1], 2, 10, (1, 1)),       # one actor, with no more threads than there are CPUs
    ([6], 4, 50, (1, 4)),       # actors x threads within the CPUs
    ([2, 2], 4, 50, (2, 2)),    # no node has 4 CPUs: an actor of 4 threads could never start
    ([3, 3], 2, 50, (2, 2)),    # one actor per node: 3 CPUs hold one actor of 2 threads
    ([1, 1, 4], 1, 50, (6, 1)), # CPUs of every node
])
def test_actors_and_threads_follow_the_nodes(nodes, threads, jobs, expected):
    assert RaySettings(threads=threads).plan(nodes, jobs) == expected


def test_asked_for_actors_stay_within_the_cpus():
    assert RaySettings(threads=2, actors=8).plan([8], 100) == (4, 2)
    assert RaySettings(actors=2).plan([8], 100) == (2, 1)


def test_bad_settings_are_one_line(monkeypatch):
    with pytest.raises(LavanyaError, match="threads must be a whole number of 1 or more"):
        RaySettings(threads=0)
    with pytest.raises(LavanyaError, match="CPU count is for address local"):
        RaySettings(address="auto", num_cpus=4)
    from lavanya_cli.speech import options

    monkeypatch.setattr(options, "checked_device", lambda device: device)  # as if this machine had CUDA
    with pytest.raises(LavanyaError, match="device cuda is for a single process"):
        run_batch([Job(SENTENCES[0], "a.wav", "hindi", "male")], "out", options=LoadOptions(device="cuda"))


def test_ray_options_through_synth(cli, tmp_path):
    lines = tmp_path / "lines.txt"
    lines.write_text(SENTENCES[0] + "\n", encoding="utf-8")
    code, _, err = cli("synth", "--lines", lines, "--lang", "hindi", "--gender", "male", "--ray", "local")
    assert code == 2 and "--ray needs --output-dir" in err
    code, _, err = cli("synth", "--text", "x", "-o", tmp_path / "a.wav", "--ray", "local")
    assert code == 2 and "drop -o, --plot and the text options" in err
    code, _, err = cli("synth", "--lines", lines, "--output-dir", tmp_path, "--lang", "hindi", "--gender", "male",
                       "--max-input", "4", "--ray", "local")
    assert code == 2 and "input limit" in err


def test_without_ray_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(LavanyaError, match=r"pip install 'lavanya\[ray\]'"):
        run_batch([Job(SENTENCES[0], "a.wav", "hindi", "male")], str(tmp_path / "out"))


def test_ids_and_stale_temporaries_on_ray(tmp_path, local_ray):
    out = tmp_path / "out"
    out.mkdir()
    stale, unrelated = out / ".a.wav.0123456789abcdef0123456789abcdef.tmp", out / ".notes.tmp"
    stale.write_bytes(b"RIFF")
    unrelated.write_bytes(b"mine")
    jobs = [Job(SENTENCES[0], "a.wav", "hindi", "male", where="j.jsonl:1", id="intro"),
            Job(SENTENCES[1], "b.wav", "hindi", "male", where="j.jsonl:2")]
    report = run_batch(jobs, str(out), find=FindOptions(models=shared_voice_root()))
    assert (report.done, report.temporaries_removed) == (2, 1)
    assert not stale.exists() and unrelated.exists()
    assert {entry["output"]: entry["id"] for entry in _manifest_lines(out / RESULTS_NAME)} == {"a.wav": "intro",
                                                                                              "b.wav": 2}
    # a rerun keeps the id of the jobs it skips
    again = run_batch(jobs, str(out), find=FindOptions(models=shared_voice_root()))
    assert again.already_done == 2 and {entry["id"] for entry in _manifest_lines(out / RESULTS_NAME)} == {"intro", 2}


def test_the_summary_counts_in_words():
    from lavanya_cli.cli.synth_ray import _notes
    from lavanya_cli.batch.ray import BatchReport

    report = BatchReport(output_dir="out", manifest="out/m.jsonl", jobs=1, actors=1, threads=1, temporaries_removed=1,
                         lost=[{"node": "10.0.0.2", "node_id": "n", "worker": "b:7", "error": "ActorDiedError",
                                "why": "its node left the cluster", "jobs": 2}])
    notes = _notes(report)
    assert "lavanya: 1 job: 0 done, 0 already done, 0 failed" in notes[-1] and "on 1 actor x 1 thread ->" in notes[-1]
    assert ("lavanya: a worker was lost: its node left the cluster (10.0.0.2, b:7); its 2 jobs went to the other "
            "workers") in notes
    assert "lavanya: removed 1 temporary file left by writers that were stopped" in notes
