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
from lavanya_cli.bench import compare
from lavanya_cli.bench.measure import upstream_copy
from _helpers import auto_engine
from synthkit import shared_voice, shared_voice_root

REPO = Path(__file__).resolve().parents[1]

TEXT = "नमस्ते, आप कैसे हैं? ठीक है।"


def test_bench_reports_load_latency_rtf_and_memory(cli):
    code, out, err = cli("bench", "--models", shared_voice_root(), "--text", TEXT, "--runs", "1", "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["sentences"] == 2 and report["audio_seconds"] > 0.5
    assert report["mode"] == "repeated" and len(report["calls"]) == 2
    assert report["engine"] == auto_engine()  # what auto measured for the voice on this CPU
    assert report["engine_choice"]["engine"] == report["engine"] and report["engine_choice"]["reason"]
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
def test_compare_measures_each_engine_as_found_and_busy_in_fresh_processes(cli):
    code, out, err = cli("bench", "--models", shared_voice_root(), "--compare", "onnx", "--busy", "--runs", "2",
                         "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert [(row["engine"], row["spinner"]) for row in report["rows"]] == [("onnx", False), ("onnx", True)]
    assert report["rows"][0]["condition"] in ("idle", "loaded")
    assert report["rows"][1]["condition"] in ("busy", "busy, loaded")
    assert report["busy_cpu"] in os.sched_getaffinity(0) and report["left_out"] == {}
    assert len(report["load_average"]["before"]) == len(report["load_average"]["after"]) == 3
    # prepare, then two rounds of warm, 1 and 5 sentences; again with the spinner (no prepare)
    assert [(run["kind"], run["spinner"]) for run in report["order"]] == (
        [("prepare", False)] + [("warm", False), ("start_to_wav", False), ("start_to_wav", False)] * 2
        + [("warm", True), ("start_to_wav", True), ("start_to_wav", True)] * 2)
    for run in report["order"]:
        assert run["seconds"] > 0 and run["peak_rss_mb"] > 0 and run["load_before"] >= 0 and run["load_after"] >= 0
    for row in report["rows"]:
        one, five = row["sentences_1"], row["sentences_5"]
        assert one["start_to_wav_seconds"]["n"] == five["start_to_wav_seconds"]["n"] == 2
        assert one["start_to_wav_seconds"]["min"] <= one["start_to_wav_seconds"]["median"] <= one["start_to_wav_seconds"]["max"]
        assert row["peak_rss_mb"] == max(one["peak_rss_mb"], five["peak_rss_mb"])
        assert five["audio_seconds"] > one["audio_seconds"] > 0  # the children really spoke 1 and 5 sentences
        assert row["warm"]["mode"] == "unrepeated" and row["warm_real_time_factor"] > 0
        assert row["warm"]["first_call_seconds"]["median"] > 0 and row["vs_upstream"] is None


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
