"""``lavanya bench`` and its upstream-way runner on the tiny random-weight voice (see synthkit)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from lavanya_cli.bench import upstream_way
from lavanya_cli.speech.audio import join_pcm
from lavanya_cli.speech.engines import cpu_default_engine
from lavanya_cli.bench import compare
from lavanya_cli.bench.measure import ProcessRun, upstream_copy
from synthkit import shared_voice, shared_voice_root

REPO = Path(__file__).resolve().parents[1]

TEXT = "नमस्ते, आप कैसे हैं? ठीक है।"


def test_bench_reports_load_latency_rtf_and_memory(cli):
    code, out, err = cli("bench", "--models", shared_voice_root(), "--text", TEXT, "--runs", "1", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["sentences"] == 2 and report["audio_seconds"] > 0.5
    assert report["engine"] == cpu_default_engine()  # what auto is on this CPU
    # warm_seconds is reported to the millisecond; on this tiny voice that rounding alone can
    # exceed 1 %, so the tolerance covers it as well.
    assert report["warm_real_time_factor"] == pytest.approx(
        report["warm_seconds"] / report["audio_seconds"], rel=1e-2, abs=0.0006 / report["audio_seconds"])
    assert report["first_call_seconds"] > 0 and report["peak_rss_mb"] > 100


@pytest.mark.slow  # runs the voice the upstream way, through ESPnet
def test_upstream_way_says_the_same_on_a_copy_and_leaves_the_voice_alone(tmp_path, capsys):
    voice = shared_voice()
    spec = voice.spec
    before = (spec.config_path.read_bytes(), os.stat(spec.config_path).st_mtime_ns)
    copy = upstream_copy(spec, tmp_path / "model")
    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    capsys.readouterr()

    upstream_way.main(["--model-dir", str(copy), "--root", str(spec.root), "--language", "hindi",
                       "--gender", "male", "--vocoder-dir", str(spec.vocoder.directory),
                       "--text-file", str(tmp_path / "text.txt"), "--output", str(tmp_path / "up.wav")])

    report = json.loads(capsys.readouterr().out)
    assert report["chunks"] == 2 and len(report["chunk_seconds"]) == 2
    upstream_pcm, _ = soundfile.read(tmp_path / "up.wav", dtype="int16")
    np.testing.assert_array_equal(upstream_pcm, join_pcm(list(voice.synthesize(TEXT))))
    assert (spec.config_path.read_bytes(), os.stat(spec.config_path).st_mtime_ns) == before
    rewritten = yaml.safe_load((copy / "config.yaml").read_text(encoding="utf-8"))
    assert rewritten["normalize_conf"]["stats_file"] == str(copy.resolve() / "feats_stats.npz")


@pytest.mark.slow  # fresh processes, an ONNX export
def test_compare_measures_each_engine_idle_and_busy_in_fresh_processes(cli):
    code, out, err = cli("bench", "--models", shared_voice_root(), "--compare", "onnx", "--busy", "--runs", "1",
                         "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [(row["engine"], row["condition"]) for row in report["rows"]] == [("onnx", "idle"), ("onnx", "busy")]
    assert report["busy_cpu"] in os.sched_getaffinity(0) and report["left_out"] == {}
    assert len(report["load_average"]["before"]) == len(report["load_average"]["after"]) == 3
    for row in report["rows"]:
        one, five = row["sentences_1"], row["sentences_5"]
        assert one["start_to_wav_seconds"] > 0 and five["start_to_wav_seconds"] > 0
        assert one["peak_rss_mb"] > 0 and five["peak_rss_mb"] > 0
        assert row["peak_rss_mb"] == max(one["peak_rss_mb"], five["peak_rss_mb"])
        assert five["audio_seconds"] > one["audio_seconds"] > 0  # the children really spoke 1 and 5 sentences
        assert row["warm_real_time_factor"] > 0 and row["vs_upstream"] is None


def test_compare_table_gives_ratios_against_the_upstream_way(cli, monkeypatch):
    """The arithmetic and the table, on made-up process figures (the real runs are above)."""
    seconds = {"upstream": 12.0, "onnx": 3.0}

    def fake_start_to_wav(spec, engine, text_file, scratch, threads):
        return ProcessRun(seconds[engine] * (2 if text_file.name.startswith("5") else 1),
                          800.0 if engine == "upstream" else 200.0, {"audio_seconds": 1.0})

    monkeypatch.setattr(compare, "start_to_wav", fake_start_to_wav)
    monkeypatch.setattr(compare, "run_process", lambda command, what: ProcessRun(1.0, 1.0, {
        "warm_real_time_factor": 0.25, "notes": []}))
    monkeypatch.setattr(compare, "unavailable_reason", lambda name: None)
    code, out, err = cli("bench", "--models", shared_voice_root(), "--compare", "upstream,onnx", "--runs", "1")
    assert code == 0, err
    upstream_row, onnx_row = (line.split() for line in out.splitlines() if line.split()[:2] in (
        ["upstream", "idle"], ["onnx", "idle"]))
    assert upstream_row[2:6] == ["12.00", "24.00", "800", "-"]
    assert onnx_row[2:6] == ["3.00", "6.00", "200", "0.250"]
    assert " ".join(onnx_row[6:]) == "4.00x / 4.00x / 4.00x"


@pytest.mark.parametrize("args", [("--compare", "bogus"), ("--compare", "onnx,gpu"), ("--compare", ""),
                                  ("--busy",), ("--compare", "onnx", "--text", TEXT)])
def test_compare_usage_mistakes_give_one_line(cli, args):
    code, out, err = cli("bench", "--models", shared_voice_root(), *args)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("lavanya: error: ")


def test_compare_all_leaves_out_what_cannot_run_and_says_why(monkeypatch):
    monkeypatch.setattr(compare, "torch_installed", lambda: False)
    engines, left_out = compare.choose_engines("all")
    assert "torch" not in engines and "upstream" not in engines and "onnx" in engines
    assert set(left_out) >= {"torch", "upstream"} and "torch" in left_out["torch"]


BENCH_AND_LIST_MODULES = """
import json, sys
from lavanya_cli.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loaded": sorted(m for m, module in sys.modules.items()
                  if module is not None and m.split(".")[0] in ("torch", "espnet", "espnet2"))}), file=sys.stderr)
"""


@pytest.mark.slow  # a subprocess
def test_bench_onnx_engine_in_process_never_imports_torch():
    shared_voice()  # makes the export in the session's cache, which the child inherits
    done = subprocess.run(
        [sys.executable, "-c", BENCH_AND_LIST_MODULES, "bench", "--models", str(shared_voice_root()),
         "--engine", "onnx", "--runs", "1", "--format", "json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    finished = json.loads(done.stderr.splitlines()[-1])
    assert finished["code"] == 0, done.stderr
    assert json.loads(done.stdout)["engine"] == "onnx"
    assert finished["loaded"] == []
